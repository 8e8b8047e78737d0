-- reflow schema v1 (SQLite). Keep in step with ../postgres/0001_init.sql; never edit once shipped.
CREATE TABLE revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 1);

CREATE TABLE users (
    id BLOB PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    groups TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id BLOB PRIMARY KEY,
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    jti TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE targets (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    url TEXT,
    transport_type TEXT NOT NULL,
    command TEXT,
    args TEXT NOT NULL DEFAULT '[]',
    cwd TEXT,
    image TEXT,
    port INTEGER,
    health_path TEXT,
    statefulness TEXT NOT NULL DEFAULT 'stateless',
    isolation_boundary TEXT NOT NULL DEFAULT 'shared',
    auth_type TEXT NOT NULL DEFAULT 'none',
    auth_header_name TEXT,
    enabled BOOLEAN NOT NULL DEFAULT 1,
    prefix TEXT,
    timeout_ms BIGINT,
    env TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE policies (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    target_id BLOB REFERENCES targets(id) ON DELETE CASCADE,
    resource_type TEXT NOT NULL,
    resource_pattern TEXT,
    effect TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    enabled BOOLEAN NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE policy_subjects (
    id BLOB PRIMARY KEY,
    policy_id BLOB NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    subject_type TEXT NOT NULL,
    subject_value TEXT
);
CREATE INDEX policy_subjects_policy ON policy_subjects(policy_id);

-- Tokens (key = '') and env entries of a target, one row per scope and key, encrypted.
CREATE TABLE target_credentials (
    id BLOB PRIMARY KEY,
    target_id BLOB NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    scope_value TEXT NOT NULL DEFAULT '',
    key TEXT NOT NULL DEFAULT '',
    ciphertext BLOB NOT NULL,
    key_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (target_id, kind, scope, scope_value, key)
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id BLOB,
    principal_hash TEXT NOT NULL,
    protocol_version TEXT NOT NULL,
    client_capabilities TEXT NOT NULL DEFAULT '{}',
    client_info TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE audit_log (
    id BLOB PRIMARY KEY,
    session_id TEXT,
    user_id BLOB,
    method TEXT NOT NULL,
    target_name TEXT,
    name TEXT,
    decision TEXT NOT NULL,
    policy_name TEXT,
    response_status INTEGER,
    error TEXT,
    duration_ms BIGINT NOT NULL DEFAULT 0,
    request_body TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX audit_log_created ON audit_log(created_at);
CREATE INDEX audit_log_user ON audit_log(user_id, created_at);

CREATE TABLE instances (
    id BLOB PRIMARY KEY,
    target_id BLOB NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    isolation_key TEXT NOT NULL,
    replica TEXT NOT NULL,
    pid INTEGER,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    last_used_at TEXT NOT NULL,
    stopped_at TEXT
);
CREATE INDEX instances_target ON instances(target_id);

-- Default deny: a fresh installation has exactly one policy, role admin may do everything.
INSERT INTO policies (id, name, description, target_id, resource_type, resource_pattern, effect, priority, enabled, created_at, updated_at)
VALUES (X'00000000000000000000000000000001', 'admin-all', 'Role admin may do everything', NULL, 'all', NULL, 'allow', 1000, 1,
        '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00');
INSERT INTO policy_subjects (id, policy_id, subject_type, subject_value)
VALUES (X'00000000000000000000000000000002', X'00000000000000000000000000000001', 'role', 'admin');
