-- +goose Up
SELECT 1;
   
-- kept, because the line above is not empty
SELECT 2;
-- +goose Down
