-- +goose Up
SELECT 1;
-- +GOOSE Down
SELECT 2;
-- +goose Down
SELECT 3;
