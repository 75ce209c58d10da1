"""Database URLs: split, encode and redact them (pure, no dialect knowledge).

A URL may hold a password, so nothing here ever puts a piece of one into an
error message: a message that must name the URL uses ``redact``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from .errors import ConfigError


@dataclass(frozen=True)
class ServerAddress:
    """The parts of a server URL a DBAPI driver needs, password included."""

    host: str
    port: int | None
    user: str | None
    password: str | None
    database: str | None
    query: dict[str, str] = field(default_factory=dict)


def split_scheme(url: str) -> tuple[str, str, str]:
    """(base scheme lowercased, driver after '+', the rest after '://')."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        # Not quoted: without a scheme nothing tells which part is the password.
        raise ConfigError(
            "database URL has no scheme: expected postgres://, mysql:// or sqlite:///"
        )
    base, _, driver = scheme.lower().partition("+")
    return base, driver, rest


def server_address(url: str) -> ServerAddress:
    """Host, port, user, password, database and query of a server URL."""
    parts = urlsplit(url)
    return ServerAddress(
        host=parts.hostname or "localhost",
        port=parts.port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        database=unquote(parts.path.lstrip("/")) or None,
        query={k: v[-1] for k, v in parse_qs(parts.query).items()},
    )


def redact(url: str) -> str:
    """The URL with any password replaced by ***, safe for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable database URL>"
    if "@" in url.partition("://")[2][len(parts.netloc) :]:
        return f"{parts.scheme}://***"  # an unencoded '/' or '?' in the password
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def with_encoded_userinfo(url: str) -> str:
    """The server URL with user and password percent-encoded.

    Users paste passwords containing '@', ':' or '/' unencoded; Python's URL
    parser splits at the last '@', libpq and SQLAlchemy at the first, so the
    same URL would mean different hosts to different layers and an error could
    echo part of the password as a host name. Encoding once makes all agree.
    """
    # The messages below never quote the URL: any piece of it may be password.
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigError("malformed database URL (check the host part)") from None
    if "@" in url.partition("://")[2][len(parts.netloc) :]:
        # A '/', '?' or '#' in the password ended the host part early.
        raise ConfigError(
            "malformed database URL: percent-encode '/', '?', '#' and '@' in the user "
            "name and password (as %2F, %3F, %23, %40)"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigError("malformed database URL: the port is not a number") from None
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    netloc = quote(unquote(user), safe="")
    if colon:
        netloc += ":" + quote(unquote(password), safe="")
    return urlunsplit(parts._replace(netloc=f"{netloc}@{hostport}"))


def pop_query_param(url: str, name: str) -> tuple[str, str | None]:
    """The URL without query parameter `name`, and that parameter's last value."""
    parts = urlsplit(url)
    if not parts.query:
        return url, None
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    values = [v for k, v in pairs if k == name]
    if not values:
        return url, None
    kept = urlencode([(k, v) for k, v in pairs if k != name])
    return urlunsplit(parts._replace(query=kept)), values[-1]


def database_of(url: str) -> str:
    """The database a server URL names (its path), '' when none."""
    return unquote(urlsplit(url).path.lstrip("/"))


def with_database(url: str, database: str) -> str:
    """The same server URL naming another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))
