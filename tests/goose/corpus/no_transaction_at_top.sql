-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY idx_t ON t(id);
-- +goose Down
DROP INDEX CONCURRENTLY idx_t;
