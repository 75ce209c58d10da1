-- +goose Up
SELECT 1;
-- +goose StatementBegin
SELECT 2;
