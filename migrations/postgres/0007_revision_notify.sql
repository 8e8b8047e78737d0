-- Every bump of the revision (an admin write by the API, the CLI or another replica) notifies
-- the servers listening on `reflow_revision`, so a revoked token or changed password reaches
-- them at once instead of at their next poll.
CREATE OR REPLACE FUNCTION reflow_revision_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('reflow_revision', NEW.value::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER revision_notify AFTER UPDATE ON revision
    FOR EACH ROW EXECUTE FUNCTION reflow_revision_notify();
