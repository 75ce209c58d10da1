"""goose's command line, read as goose reads it (pure): Go's flag rules, goose's
flags and environment variables, DRIVER DBSTRING COMMAND [ARGS].

Nothing here touches a database or prints; `cli/goose.py` runs what this reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# goose's flags: name -> takes a value (False: a boolean flag).
FLAGS: dict[str, bool] = {
    "dir": True,
    "table": True,
    "v": False,
    "h": False,
    "version": False,
    "certfile": True,
    "ssl-cert": True,
    "ssl-key": True,
    "s": False,
    "allow-missing": False,
    "no-versioning": False,
    "no-color": False,
    "timeout": True,
    "env": True,
}
DEFAULT_DIR = "."  # goose's -dir default
DEFAULT_TABLE = "goose_db_version"
# Commands goose runs without a database (checked before DRIVER and DBSTRING).
WITHOUT_DATABASE = ("create", "fix", "env", "validate")


class FlagError(Exception):
    """What Go's flag package says about a bad flag (goose then exits 2)."""


@dataclass(frozen=True)
class Invocation:
    """One goose command line, flags and environment applied."""

    flags: dict[str, str | bool] = field(default_factory=dict)  # only those given
    positional: tuple[str, ...] = ()  # after GOOSE_DRIVER / GOOSE_DBSTRING are merged in
    directory: str = DEFAULT_DIR
    table: str = DEFAULT_TABLE

    def flag(self, name: str) -> bool:
        return bool(self.flags.get(name, False))

    @property
    def command(self) -> str | None:
        """The command, when goose would find one."""
        if self.positional and self.positional[0] in WITHOUT_DATABASE:
            return self.positional[0]
        return self.positional[2] if len(self.positional) >= 3 else None

    @property
    def needs_database(self) -> bool:
        return not (self.positional and self.positional[0] in WITHOUT_DATABASE)

    @property
    def arguments(self) -> tuple[str, ...]:
        """What follows the command."""
        start = 1 if not self.needs_database else 3
        return self.positional[start:]


def parse_flags(argv: Sequence[str]) -> tuple[dict[str, str | bool], list[str]]:
    """(flags, positional arguments) by Go's rules: `-name`, `--name`, `-name=value`,
    `-name value` for flags that take one, `--` ends the flags. Like current goose,
    flags may also follow the positional arguments."""
    flags: dict[str, str | bool] = {}
    positional: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        name, equals, value = arg.lstrip("-").partition("=")
        if arg.startswith("---") or not name:
            raise FlagError(f"bad flag syntax: {arg}")
        if name == "help":  # Go's flag package: -help shows the usage when undefined
            flags["h"] = True
            continue
        if name not in FLAGS:
            raise FlagError(f"flag provided but not defined: -{name}")
        if not FLAGS[name]:
            flags[name] = _go_bool(name, value) if equals else True
            continue
        if not equals:
            if i >= len(args):
                raise FlagError(f"flag needs an argument: -{name}")
            value = args[i]
            i += 1
        if name == "timeout":
            go_duration(value)  # a Duration flag: Go refuses a bad one while parsing
        flags[name] = value
    return flags, positional


def _go_bool(name: str, value: str) -> bool:
    """strconv.ParseBool, as Go's flag package uses it."""
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise FlagError(f'invalid boolean value "{value}" for -{name}: parse error')


def read(argv: Sequence[str], env: Mapping[str, str]) -> Invocation:
    """The invocation goose would see: flags over GOOSE_MIGRATION_DIR / GOOSE_TABLE;
    GOOSE_DRIVER and GOOSE_DBSTRING inserted before the arguments, as goose does."""
    flags, positional = parse_flags(argv)
    directory = flags.get("dir")
    if not isinstance(directory, str) or directory == DEFAULT_DIR:
        directory = env.get("GOOSE_MIGRATION_DIR") or DEFAULT_DIR
    table = flags.get("table")
    if not isinstance(table, str):
        table = env.get("GOOSE_TABLE") or DEFAULT_TABLE
    if positional and positional[0] not in WITHOUT_DATABASE:
        if env.get("GOOSE_DRIVER"):
            positional = [env["GOOSE_DRIVER"], *positional]
        if env.get("GOOSE_DBSTRING"):
            positional = [positional[0], env["GOOSE_DBSTRING"], *positional[1:]]
    return Invocation(flags, tuple(positional), directory, table)


_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def go_duration(text: str) -> float:
    """Seconds from Go's time.ParseDuration syntax (`1h13m`, `90s`, `0`)."""
    if text == "0":
        return 0.0
    parts = list(_GO_DURATION_PART.finditer(text))
    if not parts or "".join(p.group(0) for p in parts) != text:
        raise FlagError(f'invalid value "{text}" for flag -timeout: parse error')
    return sum(float(p.group(1)) * _GO_UNITS[p.group(2)] for p in parts)


def redact_dbstring(dbstring: str) -> str:
    """A DBSTRING with its password masked, in whichever form it is written."""
    from llm_proxy import urls

    if "://" in dbstring:
        return urls.redact(dbstring)
    if "=" in dbstring and "@" not in dbstring:  # libpq key=value
        return re.sub(
            r"(password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)", r"\1***", dbstring, flags=re.IGNORECASE
        )
    head, slash, tail = dbstring.rpartition("/")
    userinfo, at, address = head.rpartition("@")
    if at and ":" in userinfo:  # Go's MySQL DSN user:password@...
        return f"{userinfo.partition(':')[0]}:***@{address}{slash}{tail}"
    return dbstring
