-- +goose Up
-- +goose ENVSUB ON
SELECT '${TENANT?}';
