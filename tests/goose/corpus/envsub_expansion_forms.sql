-- +goose ENVSUB ON
-- +goose Up
CREATE SCHEMA $SCHEMA;
CREATE TABLE ${SCHEMA}.t (
    a text DEFAULT '${UNSET}',
    b text DEFAULT '${EMPTY:-fallback}',
    c text DEFAULT '${EMPTY-fallback}',
    d text DEFAULT '${UNSET-fallback}',
    e text DEFAULT '${UNSET:-${SCHEMA}_default}',
    f text DEFAULT '${SCHEMA?is set}',
    g text DEFAULT '${SCHEMA:0:3}${SCHEMA: -2}'
);
-- +goose Down
DROP SCHEMA $SCHEMA CASCADE;
