-- +goose Up
-- tokens gets a UUID primary key; token stays unique through idx_tokens_token.
-- id is of type UUID: the values are UUIDs, the type rejects anything else
-- and takes 16 bytes instead of 36. gen_random_uuid() is built in since
-- PostgreSQL 13. Adding the column with this volatile default evaluates it
-- once per existing row, so every row gets its own id; the default stays so
-- inserts that do not supply an id (for example from an older binary) work.
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS id UUID NOT NULL DEFAULT gen_random_uuid();

-- Create the unique index before dropping the old primary key so token is
-- never without a uniqueness guarantee.
CREATE UNIQUE INDEX IF NOT EXISTS idx_tokens_token ON tokens (token);

ALTER TABLE tokens DROP CONSTRAINT IF EXISTS tokens_pkey;
ALTER TABLE tokens ADD CONSTRAINT tokens_pkey PRIMARY KEY (id);

-- +goose Down
-- token becomes the primary key again; the generated ids are dropped.
ALTER TABLE tokens DROP CONSTRAINT IF EXISTS tokens_pkey;
ALTER TABLE tokens ADD CONSTRAINT tokens_pkey PRIMARY KEY (token);
DROP INDEX IF EXISTS idx_tokens_token;
ALTER TABLE tokens DROP COLUMN IF EXISTS id;
