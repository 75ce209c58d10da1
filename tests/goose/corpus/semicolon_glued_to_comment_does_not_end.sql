-- +goose Up
SELECT 1;--glued, so the last word is '1;--glued,'
SELECT 2;
-- +goose Down
