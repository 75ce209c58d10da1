
-- c
CREATE TABLE t (id int);
-- +goose Up
