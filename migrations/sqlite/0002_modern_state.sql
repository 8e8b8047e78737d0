-- One row per 2026-07-28 `requestState` already redeemed, until it expires: a state used on one
-- replica is refused as a replay on every other.
CREATE TABLE used_request_states (
    sid TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);
CREATE INDEX used_request_states_expiry ON used_request_states(expires_at);

-- Who created each task reflow relayed (exposed id `{target}/{id}`), so any replica answers a
-- task only to its creator. Deleted with the user; pruned a day after creation.
CREATE TABLE task_owners (
    task_id TEXT PRIMARY KEY,
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tool TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX task_owners_created ON task_owners(created_at);

-- Every replica polls for sessions ended elsewhere (a DELETE on another replica) every ~2 s.
CREATE INDEX sessions_ended ON sessions(ended_at);
