-- +goose Up
-- +goose Down
-- +goose StatementBegin
SELECT 2;

