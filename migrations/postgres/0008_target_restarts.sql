-- `reflow target restart` of an HTTP target counts up here: every replica sees the target changed
-- and drops its upstream sessions and connections to it; the next call opens new ones.
ALTER TABLE targets ADD COLUMN restarts BIGINT NOT NULL DEFAULT 0;
