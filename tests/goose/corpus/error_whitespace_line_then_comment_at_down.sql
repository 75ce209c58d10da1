-- +goose Up
SELECT 1;
  
-- trailing note
-- +goose Down
