-- +goose Up
-- +goose ENVSUB ON
-- +goose StatementBegin
DO $$
BEGIN
    RAISE NOTICE '${GREETING}';
END
$$;
-- +goose StatementEnd
-- +goose Down
