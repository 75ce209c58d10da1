-- +goose Up
SELECT 1;
-- +goose Down
-- +goose Up
