-- reflow schema v1 (PostgreSQL). Keep in step with ../sqlite/0001_init.sql; never edit once shipped.
CREATE TABLE revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 1);

CREATE TABLE users (
    id UUID PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    groups JSONB NOT NULL DEFAULT '[]',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_tokens (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    jti TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE targets (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    url TEXT,
    transport_type TEXT NOT NULL,
    command TEXT,
    args JSONB NOT NULL DEFAULT '[]',
    cwd TEXT,
    image TEXT,
    port INTEGER,
    health_path TEXT,
    statefulness TEXT NOT NULL DEFAULT 'stateless',
    isolation_boundary TEXT NOT NULL DEFAULT 'shared',
    auth_type TEXT NOT NULL DEFAULT 'none',
    auth_header_name TEXT,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    prefix TEXT,
    timeout_ms BIGINT,
    env JSONB NOT NULL DEFAULT '{}',
    tags JSONB NOT NULL DEFAULT '[]',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE policies (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    target_id UUID REFERENCES targets(id) ON DELETE CASCADE,
    resource_type TEXT NOT NULL,
    resource_pattern TEXT,
    effect TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE policy_subjects (
    id UUID PRIMARY KEY,
    policy_id UUID NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    subject_type TEXT NOT NULL,
    subject_value TEXT
);
CREATE INDEX policy_subjects_policy ON policy_subjects(policy_id);

-- Tokens (key = '') and env entries of a target, one row per scope and key, encrypted.
CREATE TABLE target_credentials (
    id UUID PRIMARY KEY,
    target_id UUID NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    scope_value TEXT NOT NULL DEFAULT '',
    key TEXT NOT NULL DEFAULT '',
    ciphertext BYTEA NOT NULL,
    key_id TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (target_id, kind, scope, scope_value, key)
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id UUID,
    principal_hash TEXT NOT NULL,
    protocol_version TEXT NOT NULL,
    client_capabilities JSONB NOT NULL DEFAULT '{}',
    client_info JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE audit_log (
    id UUID PRIMARY KEY,
    session_id TEXT,
    user_id UUID,
    method TEXT NOT NULL,
    target_name TEXT,
    name TEXT,
    decision TEXT NOT NULL,
    policy_name TEXT,
    response_status INTEGER,
    error TEXT,
    duration_ms BIGINT NOT NULL DEFAULT 0,
    request_body TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_log_created ON audit_log(created_at);
CREATE INDEX audit_log_user ON audit_log(user_id, created_at);

CREATE TABLE instances (
    id UUID PRIMARY KEY,
    target_id UUID NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    isolation_key TEXT NOT NULL,
    replica TEXT NOT NULL,
    pid INTEGER,
    status TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL,
    stopped_at TIMESTAMPTZ
);
CREATE INDEX instances_target ON instances(target_id);

-- Default deny: a fresh installation has exactly one policy, role admin may do everything.
INSERT INTO policies (id, name, description, target_id, resource_type, resource_pattern, effect, priority, enabled, created_at, updated_at)
VALUES ('00000000-0000-0000-0000-000000000001', 'admin-all', 'Role admin may do everything', NULL, 'all', NULL, 'allow', 1000, TRUE,
        '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00');
INSERT INTO policy_subjects (id, policy_id, subject_type, subject_value)
VALUES ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000001', 'role', 'admin');
