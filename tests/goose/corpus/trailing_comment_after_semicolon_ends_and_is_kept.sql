-- +goose Up
INSERT INTO t VALUES (1); -- first row
INSERT INTO t VALUES (2);   -- second; row
-- +goose Down
DELETE FROM t;
