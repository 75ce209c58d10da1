-- +goose Up
-- NULL means "never deactivated".
ALTER TABLE projects ADD COLUMN IF NOT EXISTS deactivated_at TIMESTAMPTZ;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS deactivated_at TIMESTAMPTZ;

-- +goose Down
ALTER TABLE tokens DROP COLUMN IF EXISTS deactivated_at;
ALTER TABLE projects DROP COLUMN IF EXISTS deactivated_at;
