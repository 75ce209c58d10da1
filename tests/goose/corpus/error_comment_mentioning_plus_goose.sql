-- +goose Up
-- see the +goose docs
SELECT 1;
