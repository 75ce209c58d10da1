-- +goose Up
-- +goose ENVSUB ON
-- dropped comment, not expanded: $1 ${
CREATE TABLE t (
    -- kept comment, expanded: $COL
    $COL int
);
-- +goose Down
