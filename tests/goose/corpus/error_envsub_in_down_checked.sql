-- +goose Up
SELECT 1;
-- +goose Down
-- +goose ENVSUB ON
DROP SCHEMA ${TENANT?needed for down};
