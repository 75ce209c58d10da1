-- +goose Up
SELECT 1;
SELECT 2 -- forgot it;
