-- +goose no transaction
-- +goose up
-- +goose STATEMENTBEGIN
SELECT 1;
-- +goose statementend
-- +goose Envsub On
SELECT '$X';
-- +goose eNvSuB oFf
-- +goose DOWN
SELECT '$X';
