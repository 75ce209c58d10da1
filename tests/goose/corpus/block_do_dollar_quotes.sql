-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'outcome') THEN
        CREATE TYPE outcome AS ENUM ('success', 'failure');
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TYPE IF EXISTS outcome;
