-- The W3C trace id of the request each row records (32 hex digits), to join rows with traces.
ALTER TABLE audit_log ADD COLUMN trace_id TEXT;
CREATE INDEX audit_log_trace_id ON audit_log (trace_id);
