"""The bookkeeping tables: goose_db_version, alembic_version and our own.

Readers and writers take a ``tables.Session`` (one open database session);
SQL builders take ``tables.Tables`` (dialect and schema) so that offline
scripts can use them without a connection.
"""
