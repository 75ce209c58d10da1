-- +goose Up
-- NULL means "never deactivated".
ALTER TABLE projects ADD COLUMN deactivated_at DATETIME(6) NULL;
ALTER TABLE tokens ADD COLUMN deactivated_at DATETIME(6) NULL;

-- +goose Down
ALTER TABLE tokens DROP COLUMN deactivated_at;
ALTER TABLE projects DROP COLUMN deactivated_at;
