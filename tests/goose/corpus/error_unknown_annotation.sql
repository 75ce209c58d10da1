-- +goose Up
SELECT 1;
-- +goose Upgrade
