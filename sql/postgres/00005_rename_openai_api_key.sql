-- +goose Up
-- PostgreSQL has no RENAME COLUMN IF EXISTS. The DO block renames only when
-- the old column exists and the new one does not, so running it against a
-- database that was already renamed (by hand or by an earlier tool) is a
-- no-op instead of an error. current_schema() follows search_path.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema()
          AND table_name = 'projects'
          AND column_name = 'openai_api_key'
    ) AND NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema()
          AND table_name = 'projects'
          AND column_name = 'api_key'
    ) THEN
        ALTER TABLE projects RENAME COLUMN openai_api_key TO api_key;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- Same guard, opposite direction.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema()
          AND table_name = 'projects'
          AND column_name = 'api_key'
    ) AND NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema()
          AND table_name = 'projects'
          AND column_name = 'openai_api_key'
    ) THEN
        ALTER TABLE projects RENAME COLUMN api_key TO openai_api_key;
    END IF;
END
$$;
-- +goose StatementEnd
