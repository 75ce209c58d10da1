-- +goose Up
SELECT '$A';
-- +goose ENVSUB ON
SELECT '$A';
-- +goose ENVSUB OFF
SELECT '$A';
-- +goose Down
-- +goose ENVSUB ON
SELECT '${A}';
