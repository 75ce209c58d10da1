"""One goose migration file: read and parsed once, when first needed.

Planning parses every pending file before the first one runs (a broken file
stops the command before the database changes), and the run then executes
the very statements that were parsed: one read of the file per command.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from llm_proxy.errors import MigrationError

from .files import MigrationFile

if TYPE_CHECKING:
    from .parser import ParsedMigration


class GooseMigration:
    """A goose file and, once asked for, its parsed Up and Down sections."""

    def __init__(self, migration_file: MigrationFile) -> None:
        self.file = migration_file
        self._sections: tuple[ParsedMigration, ParsedMigration] | None = None

    @property
    def revision(self) -> str:
        return self.file.revision

    @property
    def version(self) -> int:
        return self.file.version

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def path(self) -> Path:
        return self.file.path

    def sections(self) -> tuple[ParsedMigration, ParsedMigration]:
        """(up, down), parsed with the environment of the first call (ENVSUB)."""
        if self._sections is None:
            try:
                text = self.file.path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise MigrationError(
                    f"{self.file.path}: not valid UTF-8 (byte {exc.start})"
                ) from None
            except OSError as exc:
                raise MigrationError(f"{self.file.path}: cannot read: {exc.strerror}") from None
            from .parser import GooseParseError, parse_sections

            try:
                self._sections = parse_sections(text)
            except GooseParseError as exc:
                raise MigrationError(str(exc.with_path(str(self.file.path)))) from None
        return self._sections

    def section(self, direction: str) -> ParsedMigration:
        """The parsed Up ("up") or Down ("down") section."""
        up, down = self.sections()
        return up if direction == "up" else down
