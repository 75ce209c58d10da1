-- +goose Up
-- +goose ENVSUB ON
SELECT '${A:-x';
