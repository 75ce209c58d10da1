-- +goose Up
-- SQLite cannot alter a CHECK constraint, so audit_events is rebuilt:
-- create the new shape, copy, drop the old table, rename. No foreign key
-- points at audit_events, so this is safe whether foreign_keys is ON or OFF.
CREATE TABLE audit_events_new (
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
    outcome TEXT NOT NULL CONSTRAINT chk_audit_outcome CHECK (outcome IN ('success', 'failure', 'denied', 'error')),
    reason TEXT,
    token_id TEXT,
    metadata TEXT
);

INSERT INTO audit_events_new (id, timestamp, action, actor, project_id, request_id, correlation_id, client_ip, method, path, user_agent, outcome, reason, token_id, metadata)
SELECT id, timestamp, action, actor, project_id, request_id, correlation_id, client_ip, method, path, user_agent, outcome, reason, token_id, metadata
FROM audit_events;

DROP TABLE audit_events;
ALTER TABLE audit_events_new RENAME TO audit_events;

-- The rebuild dropped the old indexes with the old table: recreate them.
CREATE INDEX IF NOT EXISTS idx_audit_timestamp ON audit_events(timestamp);
CREATE INDEX IF NOT EXISTS idx_audit_action ON audit_events(action);
CREATE INDEX IF NOT EXISTS idx_audit_project_id ON audit_events(project_id);
CREATE INDEX IF NOT EXISTS idx_audit_client_ip ON audit_events(client_ip);
CREATE INDEX IF NOT EXISTS idx_audit_request_id ON audit_events(request_id);
CREATE INDEX IF NOT EXISTS idx_audit_outcome ON audit_events(outcome);
CREATE INDEX IF NOT EXISTS idx_audit_ip_action ON audit_events(client_ip, action);

-- +goose Down
-- The old CHECK allows only 'success' and 'failure'. Rows recorded as
-- 'denied' or 'error' are kept and mapped to 'failure' (the nearest old
-- meaning: the request did not succeed) rather than deleted, so the audit
-- trail survives; the finer distinction is lost.
UPDATE audit_events SET outcome = 'failure' WHERE outcome IN ('denied', 'error');

-- Rebuild with the old CHECK (same reasons as in Up).
CREATE TABLE audit_events_new (
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

INSERT INTO audit_events_new (id, timestamp, action, actor, project_id, request_id, correlation_id, client_ip, method, path, user_agent, outcome, reason, token_id, metadata)
SELECT id, timestamp, action, actor, project_id, request_id, correlation_id, client_ip, method, path, user_agent, outcome, reason, token_id, metadata
FROM audit_events;

DROP TABLE audit_events;
ALTER TABLE audit_events_new RENAME TO audit_events;

CREATE INDEX IF NOT EXISTS idx_audit_timestamp ON audit_events(timestamp);
CREATE INDEX IF NOT EXISTS idx_audit_action ON audit_events(action);
CREATE INDEX IF NOT EXISTS idx_audit_project_id ON audit_events(project_id);
CREATE INDEX IF NOT EXISTS idx_audit_client_ip ON audit_events(client_ip);
CREATE INDEX IF NOT EXISTS idx_audit_request_id ON audit_events(request_id);
CREATE INDEX IF NOT EXISTS idx_audit_outcome ON audit_events(outcome);
CREATE INDEX IF NOT EXISTS idx_audit_ip_action ON audit_events(client_ip, action);
