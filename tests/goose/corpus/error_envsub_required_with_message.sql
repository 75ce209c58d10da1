-- +goose Up
-- +goose ENVSUB ON
CREATE SCHEMA ${TENANT?set TENANT to the tenant schema};
