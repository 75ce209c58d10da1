-- +goose Up
CREATE TABLE t (id int, updated_at timestamp);
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION touch() RETURNS trigger AS $body$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$body$ LANGUAGE plpgsql;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER t_touch BEFORE UPDATE ON t
FOR EACH ROW EXECUTE FUNCTION touch();
-- +goose StatementEnd
INSERT INTO t VALUES (1, now());

-- +goose Down
-- +goose StatementBegin
DROP TRIGGER t_touch ON t;
DROP FUNCTION touch();
-- +goose StatementEnd
DROP TABLE t;
