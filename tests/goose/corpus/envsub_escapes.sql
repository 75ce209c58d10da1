-- +goose Up
-- +goose ENVSUB ON
SELECT '$$A', '\$A', '\\$A',
    'a dollar at the very end of a line stays' -- $
;
SELECT $(not a variable), '\n stays';
-- +goose Down
