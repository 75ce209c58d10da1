

-- Migration: add projects.
--   author: someone
   
-- +goose Up

-- creates the table
CREATE TABLE t (id int);
-- +goose Down
DROP TABLE t;
