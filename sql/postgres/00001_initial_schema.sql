-- +goose Up
-- Initial schema: projects, their tokens, and the audit log.
-- Timestamps are TIMESTAMPTZ: they store instants, so values do not shift
-- with the server's or the session's TimeZone setting.
-- Constraints are named explicitly so later migrations can alter them by name.
CREATE TABLE IF NOT EXISTS projects (
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    openai_api_key TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT projects_pkey PRIMARY KEY (id)
);

-- name is unique through idx_projects_name itself: one index, not a UNIQUE
-- constraint plus a second, redundant index on the same column.
CREATE UNIQUE INDEX IF NOT EXISTS idx_projects_name ON projects (name);

CREATE TABLE IF NOT EXISTS tokens (
    token TEXT NOT NULL,
    project_id TEXT NOT NULL,
    expires_at TIMESTAMPTZ,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    request_count INTEGER NOT NULL DEFAULT 0,
    max_requests INTEGER,
    created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_used_at TIMESTAMPTZ,
    CONSTRAINT tokens_pkey PRIMARY KEY (token),
    CONSTRAINT fk_tokens_project_id FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS idx_tokens_project_id ON tokens (project_id);
CREATE INDEX IF NOT EXISTS idx_tokens_expires_at ON tokens (expires_at);
CREATE INDEX IF NOT EXISTS idx_tokens_is_active ON tokens (is_active);

-- audit_events.project_id has no foreign key on purpose: the audit trail
-- must outlive the projects it mentions. metadata is TEXT, as in the other
-- dialects: an audit write must never fail on a malformed payload.
CREATE TABLE IF NOT EXISTS audit_events (
    id TEXT NOT NULL,
    timestamp TIMESTAMPTZ NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    project_id TEXT,
    request_id TEXT,
    correlation_id TEXT,
    client_ip TEXT,
    method TEXT,
    path TEXT,
    user_agent TEXT,
    outcome TEXT NOT NULL,
    reason TEXT,
    token_id TEXT,
    metadata TEXT,
    CONSTRAINT audit_events_pkey PRIMARY KEY (id),
    CONSTRAINT chk_audit_outcome CHECK (outcome IN ('success', 'failure'))
);

CREATE INDEX IF NOT EXISTS idx_audit_timestamp ON audit_events (timestamp);
CREATE INDEX IF NOT EXISTS idx_audit_action ON audit_events (action);
CREATE INDEX IF NOT EXISTS idx_audit_project_id ON audit_events (project_id);
CREATE INDEX IF NOT EXISTS idx_audit_client_ip ON audit_events (client_ip);
CREATE INDEX IF NOT EXISTS idx_audit_request_id ON audit_events (request_id);
CREATE INDEX IF NOT EXISTS idx_audit_outcome ON audit_events (outcome);
CREATE INDEX IF NOT EXISTS idx_audit_ip_action ON audit_events (client_ip, action);

-- +goose Down
-- Children first. Dropping a table drops its indexes and constraints.
DROP TABLE IF EXISTS audit_events;
DROP TABLE IF EXISTS tokens;
DROP TABLE IF EXISTS projects;
