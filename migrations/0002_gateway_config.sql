-- Gateway configs kept in Postgres: every instance whose file says `[postgres] config_name`
-- loads the named config from here and reloads when it changes (the trigger notifies them).

CREATE TABLE gateway_config (
    name        text PRIMARY KEY,
    config      text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION gateway_config_notify() RETURNS trigger AS $$
BEGIN
    NEW.updated_at := now();
    PERFORM pg_notify('sluice_config', NEW.name);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER gateway_config_changed
    BEFORE INSERT OR UPDATE ON gateway_config
    FOR EACH ROW EXECUTE FUNCTION gateway_config_notify();
