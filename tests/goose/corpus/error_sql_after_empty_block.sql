-- +goose Up
-- +goose StatementBegin
-- +goose StatementEnd
-- a comment
SELECT 1;
