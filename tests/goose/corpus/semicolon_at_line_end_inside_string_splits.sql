-- +goose Up
INSERT INTO notes VALUES ('a;
b');
-- +goose Down
