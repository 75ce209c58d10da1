-- +goose Down
DROP TABLE t;
-- +goose Up
