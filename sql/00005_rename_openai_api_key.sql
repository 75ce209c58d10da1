-- +goose Up
-- RENAME COLUMN (SQLite >= 3.25) edits the schema in place: no rebuild of
-- projects, so nothing can cascade to tokens.
ALTER TABLE projects RENAME COLUMN openai_api_key TO api_key;

-- +goose Down
ALTER TABLE projects RENAME COLUMN api_key TO openai_api_key;
