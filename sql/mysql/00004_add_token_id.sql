-- +goose Up
-- tokens gets a UUID primary key (VARCHAR(36): MySQL has no UUID type);
-- token stays unique through idx_tokens_token.
-- MySQL commits DDL implicitly, so this runs in steps: add the column as
-- nullable, give every existing row its own UUID() (evaluated per row), then
-- in one ALTER make it NOT NULL, move the primary key and add the unique
-- index on token, so token is never left without a uniqueness guarantee.
-- The DEFAULT (UUID()) lets inserts that do not supply an id (for example
-- from an older binary) keep working.
ALTER TABLE tokens ADD COLUMN id VARCHAR(36) NULL FIRST;

UPDATE tokens SET id = UUID() WHERE id IS NULL;

ALTER TABLE tokens
    MODIFY COLUMN id VARCHAR(36) NOT NULL DEFAULT (UUID()),
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (id),
    ADD UNIQUE INDEX idx_tokens_token (token);

-- +goose Down
-- token becomes the primary key again; the generated ids are dropped.
ALTER TABLE tokens
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (token),
    DROP INDEX idx_tokens_token,
    DROP COLUMN id;
