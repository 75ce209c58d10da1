"""Which exceptions are the user's to read (one line, no traceback)."""

from __future__ import annotations

# Checked by class name and module so that the CLI need not import every
# module (SQLAlchemy, Alembic) just to catch their errors.
_USER_ERROR_NAMES = {
    "ConfigError",
    "DatabaseNewerThanCode",
    "DatabaseUnavailable",
    "LockTimeout",
    "MigrateError",
    "MigrationError",
    "MigrationFileError",
    "GooseParseError",
    "StateConflict",
    "CommandError",  # alembic.util.CommandError
}


def user_message(exc: BaseException) -> str | None:
    """The one-line message for an error the user can act on, else None."""
    name = type(exc).__name__
    module = type(exc).__module__
    if name in _USER_ERROR_NAMES and (
        module.startswith("llm_proxy") or module.startswith("alembic")
    ):
        return _one_line(str(exc))
    if module.startswith("sqlalchemy"):
        original = getattr(exc, "orig", None)
        return _one_line(str(original if original is not None else exc))
    if isinstance(exc, OSError):
        return _one_line(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    return None


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "unknown error"
    first = lines[0]
    # MigrationFileError lists one bad file per line: keep them, joined.
    return "; ".join(lines) if len(lines) <= 5 and first.endswith(":") else first
