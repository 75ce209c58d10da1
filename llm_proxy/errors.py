"""Errors a user reads, and how any error becomes one line.

Every error whose message is meant for the user derives from ``LlmProxyError``:
its text is one line (or, for a list of bad files, a few), names the file,
line or version at fault, and never holds a password. The CLI catches this
one base class; whoever calls the Python API can do the same.

This module imports nothing (it sits below every other module).
"""

from __future__ import annotations


class LlmProxyError(Exception):
    """Base of every user-facing error: ``str(error)`` is the message to show."""


class ConfigError(LlmProxyError, ValueError):
    """A setting (flag, environment variable, URL, ini option) that cannot be used."""


class DatabaseUnavailable(LlmProxyError):
    """The database cannot be reached, opened or written."""


class ListenError(LlmProxyError):
    """The HTTP server cannot listen on its address (in use, not local, no permission)."""


class LockTimeout(LlmProxyError):
    """The migration lock (or a database lock) was not granted in time."""


class MigrateError(LlmProxyError):
    """A command that cannot proceed: a bad target, a refused state, a bad graph."""


class NoNextVersion(MigrateError):
    """`up-by-one` with nothing pending: goose calls this an error too."""

    def __init__(self, version: int) -> None:
        super().__init__(f"no next version found: nothing to apply above version {version}")
        self.version = version


class StateConflict(LlmProxyError):
    """The version tables disagree in a way no rule explains, or the graph is broken."""


class DatabaseNewerThanCode(LlmProxyError):
    """The database has a version applied that no migration known here defines."""


class SquashError(LlmProxyError):
    """`migrate squash` cannot write a baseline (a bad version, an object the dump
    does not cover); the directory is left as it was."""


class ValidateError(LlmProxyError):
    """`migrate validate` could not run (for example: no scratch database)."""


class MigrationError(LlmProxyError):
    """A migration that cannot be read or failed while running; names the file."""


class StatementFailed(MigrationError):
    """One statement of a migration failed on the database.

    The fields say where (so a caller can point at the line without parsing
    the message); the message is built from them.
    """

    def __init__(
        self, *, file_name: str, direction: str, number: int, statement: str, reason: str
    ) -> None:
        self.file_name = file_name
        self.direction = direction  # "up" or "down"
        self.number = number  # 1-based, in goose's statement order
        self.statement = statement
        self.reason = reason
        super().__init__(f"{file_name}: statement {number} failed: {self.detail}")

    @property
    def detail(self) -> str:
        """The driver's reason and the statement, shortened: the message after its place."""
        return f"{shorten(self.reason)} (statement: {shorten(self.statement)})"

    def __reduce__(self) -> tuple[object, ...]:
        fields = {
            "file_name": self.file_name,
            "direction": self.direction,
            "number": self.number,
            "statement": self.statement,
            "reason": self.reason,
        }
        return (_rebuild_statement_failed, (fields,))


class LockNotGranted(MigrationError):
    """A migration statement kept giving up on a table lock (lock timeout), on
    every try; what it did was rolled back."""


def _rebuild_statement_failed(fields: dict[str, object]) -> StatementFailed:
    return StatementFailed(**fields)  # type: ignore[arg-type]


def shorten(text: str, limit: int = 120) -> str:
    """`text` on one line (whitespace runs folded), cut to `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def reason(error: BaseException, *, whole: bool = False) -> str:
    """What went wrong, in one line, from any exception.

    SQLAlchemy wraps the driver's error (``.orig``): the driver's own text is
    the informative one. By default only its first line is kept (PostgreSQL
    adds ``LINE 1: ...`` and a caret below); ``whole=True`` folds every line
    into one (connection errors put their hint on a second line). An empty
    message gives the exception's type name.
    """
    original = getattr(error, "orig", None)
    text = str(original if original is not None else error).strip()
    if not whole:
        text = next((line for line in text.splitlines() if line.strip()), "")
    folded = " ".join(text.split())
    return folded or type(original if original is not None else error).__name__


def user_message(error: BaseException) -> str | None:
    """The message to show for an error the user can act on, else None.

    SQLAlchemy's errors are recognised by module so that callers need not
    import SQLAlchemy just to catch them.
    """
    if isinstance(error, LlmProxyError):
        return _message_lines(str(error))
    module = type(error).__module__
    if module.startswith("alembic") and type(error).__name__ == "CommandError":
        return _message_lines(str(error))
    if module.startswith("sqlalchemy"):
        return reason(error)
    if isinstance(error, OSError):
        detail = f"{error.strerror or error}: {error.filename}" if error.filename else str(error)
        return _message_lines(detail)
    return None


def describe_unexpected(error: BaseException) -> str:
    """One line for an error nobody anticipated: its type and first line."""
    detail = str(error).strip().splitlines()
    return user_message(error) or f"{type(error).__name__}: {detail[0] if detail else ''}"


def _message_lines(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "unknown error"
    first = lines[0]
    # A list of bad files (one per line under a heading ending in ':') stays whole.
    return "; ".join(lines) if len(lines) <= 5 and first.endswith(":") else first
