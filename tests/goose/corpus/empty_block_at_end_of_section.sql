-- +goose Up
SELECT 1;
-- +goose StatementBegin
-- +goose StatementEnd
-- +goose Down
-- +goose StatementBegin
-- only a comment
-- +goose StatementEnd
