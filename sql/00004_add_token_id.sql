-- +goose Up
-- SQLite cannot change a table's primary key with ALTER TABLE, so tokens is
-- rebuilt: create the new shape, copy, drop the old table, rename.
-- Only the child table (tokens) is rebuilt; projects is never dropped, so
-- ON DELETE CASCADE cannot fire whether foreign_keys is ON or OFF.
-- Nothing references tokens, so dropping the old table is safe either way.
--
-- id defaults to a random version-4 UUID string: 16 random bytes laid out as
-- 8-4-4-4-12 hex, with the version nibble forced to 4 and the variant nibble
-- drawn from 8, 9, a, b. The INSERT below leaves id out, so every existing
-- row gets its own UUID from this default, and inserts that do not supply
-- an id (for example from an older binary) still work.
CREATE TABLE tokens_new (
    id TEXT NOT NULL PRIMARY KEY DEFAULT (lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' || substr('89AB', 1 + (random() & 3), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))),
    token TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    expires_at DATETIME,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    request_count INTEGER NOT NULL DEFAULT 0,
    max_requests INTEGER,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_used_at DATETIME,
    deactivated_at DATETIME,
    cache_hit_count INTEGER NOT NULL DEFAULT 0
);

INSERT INTO tokens_new (token, project_id, expires_at, is_active, request_count, max_requests, created_at, last_used_at, deactivated_at, cache_hit_count)
SELECT token, project_id, expires_at, is_active, request_count, max_requests, created_at, last_used_at, deactivated_at, cache_hit_count
FROM tokens;

DROP TABLE tokens;
ALTER TABLE tokens_new RENAME TO tokens;

-- The rebuild dropped the old indexes with the old table: recreate them.
CREATE UNIQUE INDEX IF NOT EXISTS idx_tokens_token ON tokens(token);
CREATE INDEX IF NOT EXISTS idx_tokens_project_id ON tokens(project_id);
CREATE INDEX IF NOT EXISTS idx_tokens_expires_at ON tokens(expires_at);
CREATE INDEX IF NOT EXISTS idx_tokens_is_active ON tokens(is_active);

-- +goose Down
-- Rebuild back to token as primary key (same reasons as in Up). The generated
-- ids are dropped; every other column is copied.
CREATE TABLE tokens_new (
    token TEXT NOT NULL PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    expires_at DATETIME,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    request_count INTEGER NOT NULL DEFAULT 0,
    max_requests INTEGER,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_used_at DATETIME,
    deactivated_at DATETIME,
    cache_hit_count INTEGER NOT NULL DEFAULT 0
);

INSERT INTO tokens_new (token, project_id, expires_at, is_active, request_count, max_requests, created_at, last_used_at, deactivated_at, cache_hit_count)
SELECT token, project_id, expires_at, is_active, request_count, max_requests, created_at, last_used_at, deactivated_at, cache_hit_count
FROM tokens;

DROP TABLE tokens;
ALTER TABLE tokens_new RENAME TO tokens;

CREATE INDEX IF NOT EXISTS idx_tokens_project_id ON tokens(project_id);
CREATE INDEX IF NOT EXISTS idx_tokens_expires_at ON tokens(expires_at);
CREATE INDEX IF NOT EXISTS idx_tokens_is_active ON tokens(is_active);
