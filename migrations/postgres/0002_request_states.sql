-- One row per 2026-07-28 `requestState` already redeemed, until it expires: a state used on one
-- replica is refused as a replay on every other.
CREATE TABLE used_request_states (
    sid TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX used_request_states_expiry ON used_request_states(expires_at);
