-- +goose Up
CREATE TABLE t (
    id int, -- the id; primary
    name text -- ;
);
-- +goose Down
DROP TABLE t;
