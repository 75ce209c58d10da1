-- +goose Up
-- Initial schema: projects, their tokens, and the audit log.
-- Non-INTEGER primary keys in SQLite accept NULL unless NOT NULL is declared,
-- so every primary key says NOT NULL explicitly.
CREATE TABLE IF NOT EXISTS projects (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    openai_api_key TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- name is unique through idx_projects_name itself: one index, not a UNIQUE
-- constraint plus a second, redundant index on the same column.
CREATE UNIQUE INDEX IF NOT EXISTS idx_projects_name ON projects(name);

CREATE TABLE IF NOT EXISTS tokens (
    token TEXT NOT NULL PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    expires_at DATETIME,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    request_count INTEGER NOT NULL DEFAULT 0,
    max_requests INTEGER,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_used_at DATETIME
);

CREATE INDEX IF NOT EXISTS idx_tokens_project_id ON tokens(project_id);
CREATE INDEX IF NOT EXISTS idx_tokens_expires_at ON tokens(expires_at);
CREATE INDEX IF NOT EXISTS idx_tokens_is_active ON tokens(is_active);

-- audit_events.project_id has no foreign key on purpose: the audit trail
-- must outlive the projects it mentions.
CREATE TABLE IF NOT EXISTS audit_events (
    id TEXT NOT NULL PRIMARY KEY,
    timestamp DATETIME NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    project_id TEXT,
    request_id TEXT,
    correlation_id TEXT,
    client_ip TEXT,
    method TEXT,
    path TEXT,
    user_agent TEXT,
    outcome TEXT NOT NULL CONSTRAINT chk_audit_outcome CHECK (outcome IN ('success', 'failure')),
    reason TEXT,
    token_id TEXT,
    metadata TEXT
);

CREATE INDEX IF NOT EXISTS idx_audit_timestamp ON audit_events(timestamp);
CREATE INDEX IF NOT EXISTS idx_audit_action ON audit_events(action);
CREATE INDEX IF NOT EXISTS idx_audit_project_id ON audit_events(project_id);
CREATE INDEX IF NOT EXISTS idx_audit_client_ip ON audit_events(client_ip);
CREATE INDEX IF NOT EXISTS idx_audit_request_id ON audit_events(request_id);
CREATE INDEX IF NOT EXISTS idx_audit_outcome ON audit_events(outcome);
CREATE INDEX IF NOT EXISTS idx_audit_ip_action ON audit_events(client_ip, action);

-- +goose Down
-- Children first. Dropping a table drops its indexes.
DROP TABLE IF EXISTS audit_events;
DROP TABLE IF EXISTS tokens;
DROP TABLE IF EXISTS projects;
