-- +goose Up
CREATE TABLE t (
    id int -- c;
);

-- +goose StatementBegin
DO $$ BEGIN PERFORM 1; END $$;
-- +goose StatementEnd
-- +goose Down
DROP TABLE t;
