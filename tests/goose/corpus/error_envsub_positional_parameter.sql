-- +goose Up
-- +goose ENVSUB ON
PREPARE q AS SELECT $1;
