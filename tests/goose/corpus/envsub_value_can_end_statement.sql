-- +goose Up
-- +goose ENVSUB ON
SELECT 1$TERMINATOR
SELECT 2;
-- +goose Down
