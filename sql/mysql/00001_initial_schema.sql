-- +goose Up
-- Initial schema: projects, their tokens, and the audit log.
-- Targets MySQL >= 8.0.19 and MariaDB >= 10.5 (enforced CHECK, DROP
-- CONSTRAINT, RENAME COLUMN, expression defaults). Only syntax both accept is
-- used, so no CREATE INDEX / ADD COLUMN IF NOT EXISTS (MariaDB only); indexes
-- are declared inside CREATE TABLE IF NOT EXISTS instead.
-- Key columns are VARCHAR(255): MySQL cannot index TEXT without a prefix.
-- DATETIME(6), not TIMESTAMP: no 2038 limit (expires_at may lie far ahead)
-- and no conversion through the session time zone; microseconds as in the
-- other dialects. utf8mb4_bin makes comparisons case- and accent-sensitive as
-- in SQLite and PostgreSQL: a token must never match another token that
-- differs only in case.
CREATE TABLE IF NOT EXISTS projects (
    id VARCHAR(255) NOT NULL,
    name VARCHAR(255) NOT NULL,
    openai_api_key TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE INDEX idx_projects_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS tokens (
    token VARCHAR(255) NOT NULL,
    project_id VARCHAR(255) NOT NULL,
    expires_at DATETIME(6) NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    request_count INTEGER NOT NULL DEFAULT 0,
    max_requests INTEGER NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    last_used_at DATETIME(6) NULL,
    PRIMARY KEY (token),
    INDEX idx_tokens_project_id (project_id),
    INDEX idx_tokens_expires_at (expires_at),
    INDEX idx_tokens_is_active (is_active),
    CONSTRAINT fk_tokens_project_id FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- audit_events.project_id has no foreign key on purpose: the audit trail
-- must outlive the projects it mentions. The CHECK is named so 00006 can
-- drop and recreate it.
CREATE TABLE IF NOT EXISTS audit_events (
    id VARCHAR(255) NOT NULL,
    timestamp DATETIME(6) NOT NULL,
    action VARCHAR(255) NOT NULL,
    actor TEXT NOT NULL,
    project_id VARCHAR(255) NULL,
    request_id VARCHAR(255) NULL,
    correlation_id TEXT NULL,
    client_ip VARCHAR(255) NULL,
    method TEXT NULL,
    path TEXT NULL,
    user_agent TEXT NULL,
    outcome VARCHAR(255) NOT NULL,
    reason TEXT NULL,
    token_id TEXT NULL,
    metadata TEXT NULL,
    PRIMARY KEY (id),
    INDEX idx_audit_timestamp (timestamp),
    INDEX idx_audit_action (action),
    INDEX idx_audit_project_id (project_id),
    INDEX idx_audit_client_ip (client_ip),
    INDEX idx_audit_request_id (request_id),
    INDEX idx_audit_outcome (outcome),
    INDEX idx_audit_ip_action (client_ip, action),
    CONSTRAINT chk_audit_outcome CHECK (outcome IN ('success', 'failure'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
-- Children first. Dropping a table drops its indexes and constraints.
DROP TABLE IF EXISTS audit_events;
DROP TABLE IF EXISTS tokens;
DROP TABLE IF EXISTS projects;
