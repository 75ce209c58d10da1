-- +goose Up
-- nothing to do yet
-- really

-- +goose Down
-- nothing either
