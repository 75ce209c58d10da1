-- +goose Up
SELECT 1;
  
-- about the function
-- +goose StatementBegin
SELECT 2;
-- +goose StatementEnd
-- +goose Down
