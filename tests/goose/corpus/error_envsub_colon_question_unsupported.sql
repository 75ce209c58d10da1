-- +goose Up
-- +goose ENVSUB ON
SELECT '${A:?msg}';
