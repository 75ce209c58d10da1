-- +goose Up
-- dropped: the buffer is empty here
CREATE TABLE tokens (
    token TEXT PRIMARY KEY,
    -- kept: the statement has started

    project_id TEXT NOT NULL
);
-- +goose Down
DROP TABLE tokens;
