-- Rows written by the gateway's sinks carry an event id so that a batch written again (after
-- a commit whose answer was lost with the connection) inserts nothing twice.

ALTER TABLE service_telemetry ADD COLUMN event_id text;
ALTER TABLE audit_log ADD COLUMN event_id text;
ALTER TABLE inference_logs ADD COLUMN event_id text;
CREATE UNIQUE INDEX service_telemetry_event_id_key ON service_telemetry (event_id);
CREATE UNIQUE INDEX audit_log_event_id_key ON audit_log (event_id);
CREATE UNIQUE INDEX inference_logs_event_id_key ON inference_logs (event_id);
