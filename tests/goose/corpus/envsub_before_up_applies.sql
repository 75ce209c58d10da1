-- +goose ENVSUB ON
-- +goose Up
INSERT INTO settings VALUES ('${MODE:-dev}');
-- +goose Down
