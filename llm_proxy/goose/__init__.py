"""goose-format SQL migrations: parsing, ENVSUB and file naming (no database access)."""

from .files import (
    MigrationFile,
    MigrationFileError,
    discover,
    fix_plan,
    is_timestamp_version,
    new_migration_text,
    next_sequential_name,
    parse_filename,
    sanitize_description,
    timestamp_name,
)
from .parser import GooseParseError, ParsedMigration, has_bom, parse, parse_sections

__all__ = [
    "GooseParseError",
    "MigrationFile",
    "MigrationFileError",
    "ParsedMigration",
    "discover",
    "fix_plan",
    "has_bom",
    "is_timestamp_version",
    "new_migration_text",
    "next_sequential_name",
    "parse",
    "parse_filename",
    "parse_sections",
    "sanitize_description",
    "timestamp_name",
]
