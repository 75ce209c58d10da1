-- +goose Up
-- RENAME COLUMN keeps the column's type, NOT NULL and data.
ALTER TABLE projects RENAME COLUMN openai_api_key TO api_key;

-- +goose Down
ALTER TABLE projects RENAME COLUMN api_key TO openai_api_key;
