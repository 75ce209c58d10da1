-- +goose Up
SELECT 1;
-- between: dropped

-- also dropped
SELECT 2;
-- after the last statement: dropped
-- +goose Down
-- nothing here
