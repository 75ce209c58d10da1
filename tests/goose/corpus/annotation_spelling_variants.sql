--+goose Up
SELECT 1;
-- +goose   StatementBegin   
SELECT 2;
---- +goose StatementEnd
-- +gooseDown
SELECT 3;
