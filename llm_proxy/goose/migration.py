"""One goose migration file: read and parsed once, when first needed.

Planning parses every pending file before the first one runs (a broken file
stops the command before the database changes), and the run then executes
the very statements that were parsed: one read of the file per command, whose
digest is the checksum recorded for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from llm_proxy.errors import MigrationError

from .directives import FileDirectives, read_directives
from .files import MigrationFile

if TYPE_CHECKING:
    from .parser import ParsedMigration


class GooseMigration:
    """A goose file and, once asked for, its parsed Up and Down sections."""

    def __init__(self, migration_file: MigrationFile) -> None:
        self.file = migration_file
        self._sections: tuple[ParsedMigration, ParsedMigration] | None = None
        self._checksum: str | None = None
        self._directives = FileDirectives()

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
            text = self._read()
            from .parser import GooseParseError, parse_sections

            try:
                sections = parse_sections(text)
            except GooseParseError as exc:
                raise MigrationError(str(exc.with_path(str(self.file.path)))) from None
            self._directives = read_directives(text, str(self.file.path))
            self._sections = sections
        return self._sections

    @property
    def directives(self) -> FileDirectives:
        """The file's own lock-timeout / statement-timeout lines (read with its sections)."""
        self.sections()
        return self._directives

    @property
    def checksum(self) -> str:
        """SHA-256 of the bytes that were parsed (and so run): the file may change on
        disk meanwhile, and a second read would record the new file for the old SQL."""
        if self._checksum is None:
            self.sections()
        assert self._checksum is not None
        return self._checksum

    def _read(self) -> str:
        """The file's text, read once; its digest kept (see ``checksum``)."""
        try:
            data = self.file.path.read_bytes()
        except OSError as exc:
            raise MigrationError(f"{self.file.path}: cannot read: {exc.strerror}") from None
        import hashlib  # loads OpenSSL: only when a file is parsed, i.e. there is work

        self._checksum = hashlib.sha256(data).hexdigest()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MigrationError(f"{self.file.path}: not valid UTF-8 (byte {exc.start})") from None

    def section(self, direction: str) -> ParsedMigration:
        """The parsed Up ("up") or Down ("down") section."""
        up, down = self.sections()
        return up if direction == "up" else down
