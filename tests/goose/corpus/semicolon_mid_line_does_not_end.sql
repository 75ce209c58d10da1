-- +goose Up
INSERT INTO notes VALUES ('a;b', 'c'
);
-- +goose Down
