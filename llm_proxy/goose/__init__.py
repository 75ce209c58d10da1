"""goose-format SQL migrations: parsing, ENVSUB and file naming (no database access).

Names are re-exported lazily: the no-op start path needs `files` only, and must
not pay for loading the parser.
"""

from __future__ import annotations

from llm_proxy.lazy import exports

_EXPORTS = {
    "MigrationFile": "files",
    "MigrationFileError": "files",
    "discover": "files",
    "fix_plan": "files",
    "is_timestamp_version": "files",
    "new_migration_text": "files",
    "next_sequential_name": "files",
    "parse_filename": "files",
    "revision_id": "files",
    "sanitize_description": "files",
    "timestamp_name": "files",
    "GooseParseError": "parser",
    "ParsedMigration": "parser",
    "has_bom": "parser",
    "parse": "parser",
    "parse_sections": "parser",
}

__all__ = sorted(_EXPORTS)
__getattr__ = exports(__name__, _EXPORTS)
