-- +goose Up
-- +goose StatementBegin
CREATE TRIGGER projects_touch AFTER UPDATE ON projects
BEGIN
    UPDATE projects SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;
-- +goose StatementEnd
-- +goose Down
DROP TRIGGER projects_touch;
