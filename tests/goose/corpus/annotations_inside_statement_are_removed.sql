-- +goose Up
CREATE TABLE t (
-- +goose NO TRANSACTION
    id int
);
-- +goose StatementBegin
SELECT 1;
-- +goose ENVSUB OFF
SELECT 2;
-- +goose StatementEnd
-- +goose Down
