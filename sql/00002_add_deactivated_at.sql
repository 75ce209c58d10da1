-- +goose Up
-- NULL means "never deactivated".
ALTER TABLE projects ADD COLUMN deactivated_at DATETIME;
ALTER TABLE tokens ADD COLUMN deactivated_at DATETIME;

-- +goose Down
-- DROP COLUMN needs SQLite >= 3.35; these columns carry no index or constraint.
ALTER TABLE tokens DROP COLUMN deactivated_at;
ALTER TABLE projects DROP COLUMN deactivated_at;
