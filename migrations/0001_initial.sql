-- The gateway's tables: inference accounting, model state, service telemetry, API keys and
-- the audit log. Ids are bigint identities, times timestamptz, free-form data jsonb.

CREATE TABLE inference_logs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain            text        NOT NULL,
    model_name        text        NOT NULL,
    prompt_length     integer     NOT NULL DEFAULT 0 CHECK (prompt_length >= 0),
    response_length   integer     NOT NULL DEFAULT 0 CHECK (response_length >= 0),
    latency_ms        double precision NOT NULL DEFAULT 0 CHECK (latency_ms >= 0),
    tokens_generated  integer     NOT NULL DEFAULT 0 CHECK (tokens_generated >= 0),
    tokens_prompt     integer     NOT NULL DEFAULT 0 CHECK (tokens_prompt >= 0),
    backend           text,
    status            smallint,
    correlation_id    text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    workflow_id       text,
    user_id           text
);
CREATE INDEX inference_logs_domain_idx      ON inference_logs (domain);
CREATE INDEX inference_logs_created_at_idx  ON inference_logs (created_at);
CREATE INDEX inference_logs_workflow_id_idx ON inference_logs (workflow_id) WHERE workflow_id IS NOT NULL;

CREATE TABLE model_performance_metrics (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain           text        NOT NULL,
    model_name       text        NOT NULL,
    loading_time_ms  double precision CHECK (loading_time_ms >= 0),
    memory_usage_mb  double precision CHECK (memory_usage_mb >= 0),
    access_count     bigint      NOT NULL DEFAULT 0 CHECK (access_count >= 0),
    last_access      timestamptz,
    avg_latency_ms   double precision CHECK (avg_latency_ms >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (domain, model_name)
);
CREATE INDEX model_performance_metrics_domain_idx      ON model_performance_metrics (domain);
CREATE INDEX model_performance_metrics_last_access_idx ON model_performance_metrics (last_access);

CREATE TABLE model_cache_state (
    domain        text PRIMARY KEY,
    model_type    text        NOT NULL CHECK (model_type IN ('safetensors', 'gguf', 'transformers')),
    model_path    text        NOT NULL,
    loaded_at     timestamptz,
    memory_mb     double precision CHECK (memory_mb >= 0),
    access_count  bigint      NOT NULL DEFAULT 0 CHECK (access_count >= 0),
    last_access   timestamptz,
    cache_data    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE service_telemetry (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_name    text        NOT NULL,
    operation       text        NOT NULL,
    latency_ms      double precision NOT NULL DEFAULT 0 CHECK (latency_ms >= 0),
    success         boolean     NOT NULL,
    error_message   text,
    correlation_id  text,
    workflow_id     text,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX service_telemetry_service_name_idx   ON service_telemetry (service_name);
CREATE INDEX service_telemetry_correlation_id_idx ON service_telemetry (correlation_id) WHERE correlation_id IS NOT NULL;
CREATE INDEX service_telemetry_workflow_id_idx    ON service_telemetry (workflow_id) WHERE workflow_id IS NOT NULL;
CREATE INDEX service_telemetry_created_at_idx     ON service_telemetry (created_at);

-- API keys are stored only as a keyed hash (HMAC-SHA256 with a server secret) of the key;
-- `prefix` is the key's public, non-secret beginning, shown in listings.
CREATE TABLE api_keys (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_hash      bytea       NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    prefix        text        NOT NULL,
    owner         text        NOT NULL,
    name          text        NOT NULL,
    scopes        text[]      NOT NULL DEFAULT '{}',
    tier          text        NOT NULL DEFAULT 'free',
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    rotated_from  bigint REFERENCES api_keys (id),
    grace_until   timestamptz
);
CREATE INDEX api_keys_owner_idx ON api_keys (owner);
CREATE INDEX api_keys_active_idx ON api_keys (expires_at) WHERE revoked_at IS NULL;

CREATE TABLE audit_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    actor           text,
    action          text        NOT NULL,
    subject         text,
    outcome         text        NOT NULL,
    client_ip       inet,
    correlation_id  text,
    route           text,
    details         jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_occurred_at_idx     ON audit_log (occurred_at);
CREATE INDEX audit_log_actor_idx           ON audit_log (actor) WHERE actor IS NOT NULL;
CREATE INDEX audit_log_correlation_id_idx  ON audit_log (correlation_id) WHERE correlation_id IS NOT NULL;
