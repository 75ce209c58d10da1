-- +goose Up
-- +goose StatementBegin

-- leading comment: dropped
SELECT 1;

-- inner comment: kept
SELECT 2 -- no semicolon needed inside a block
-- +goose StatementEnd
-- +goose Down
