-- +goose Up
SELECT 1; 
SELECT 2;　-- ideographic space before the comment
-- +goose Down
