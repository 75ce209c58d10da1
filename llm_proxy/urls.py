"""Database URLs: split, encode and redact them (pure, no dialect knowledge).

A URL may hold a password, so nothing here ever puts a piece of one into an
error message: a message that must name the URL uses ``redact``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, unquote_to_bytes, urlsplit, urlunsplit

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
        query=dict(_query_pairs(parts.query)),
    )


# Query parameters whose value is a password, or says where one is kept, in any
# driver's spelling (libpq: password, sslpassword, passfile; PyMySQL: passwd).
_SECRET_WORDS = ("pass", "pwd", "secret", "token", "credential")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]*")


def is_secret_parameter(name: str) -> bool:
    """True for a query parameter whose value must never be shown."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def redact(url: str) -> str:
    """The URL with every secret field replaced by ***, safe for messages and logs.

    Structural: the password of the userinfo (whatever the scheme) and the value
    of every secret query parameter are masked; nothing else changes, so a
    one-letter password cannot garble the rest.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<database URL without a scheme>"
    netloc = _netloc(rest)
    after = rest[len(netloc) :]
    if "@" in after:
        return f"{scheme}://***"  # an unencoded '/', '?' or '#' in the password
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{hostport}"
    before_query, question, query_and_fragment = after.partition("?")
    if not question:
        before_query, hash_, fragment = after.partition("#")
        query = ""
    else:
        query, hash_, fragment = query_and_fragment.partition("#")
    shown = f"{scheme}://{netloc}{before_query}"
    if question:
        shown += "?" + "&".join(_redacted_pair(piece) for piece in query.split("&"))
    if hash_:
        shown += "#***" if fragment else "#"  # drivers ignore it; it could hold anything
    return shown


def redact_urls_in(text: str) -> str:
    """`text` (a driver's error message) with every URL in it redacted by parsing."""
    return _URL_IN_TEXT.sub(lambda found: redact(found.group(0)), text)


def _netloc(rest: str) -> str:
    """The host part after '://': up to the first '/', '?' or '#'."""
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


def _redacted_pair(piece: str) -> str:
    raw_name, equals, _value = piece.partition("=")
    return f"{raw_name}=***" if equals and is_secret_parameter(_name(piece)) else piece


def query_parameters(url: str) -> list[tuple[str, str]]:
    """(name, value) of every query parameter, decoded, in order."""
    query = _Query.of(url)
    return _query_pairs(query.text) if query else []


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """(name, value) pairs of a query, percent-decoded the way libpq does: '+' stays '+'
    (Python's parse_qs would make it a space and disagree with the driver)."""
    pairs = []
    for piece in query.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


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


def with_encoded_query(url: str) -> str:
    """The server URL with every query parameter percent-encoded one way.

    libpq quotes a query value it cannot decode (a stray '%', an extra '=') in its
    error, and such a value may be a password; SQLAlchemy reads '+' as a space where
    libpq reads a '+'. Decoded as libpq decodes and encoded again, the query means
    the same to every layer and no driver has a reason to quote it.
    """
    query = _Query.of(url)
    if query is None:
        return url
    pieces = []
    for piece in query.pieces:
        raw_name, equals, raw_value = piece.partition("=")
        name = unquote(raw_name)
        if not equals:
            raise ConfigError(f"query parameter {name!r} of the database URL has no '=value'")
        value = unquote_to_bytes(raw_value)
        if "\x00" in name or b"\x00" in value:
            raise ConfigError(
                f"query parameter {name!r} of the database URL contains %00, "
                "which no database driver accepts"
            )
        pieces.append(f"{quote(name, safe='')}={quote(value, safe='/:,')}")
    return query.with_pieces(pieces)


def split_secret_parameters(url: str) -> tuple[str, dict[str, str]]:
    """(the URL without its secret query parameters, those parameters, decoded).

    SQLAlchemy's URL masks the userinfo password when shown (Alembic prints it)
    but not `?password=`: an engine gets the secrets as connect arguments instead,
    which the driver receives exactly as it would from the query."""
    query = _Query.of(url)
    if query is None:
        return url, {}
    secrets = {name: value for name, value in _query_pairs(query.text) if is_secret_parameter(name)}
    if not secrets:
        return url, {}
    return query.with_pieces([p for p in query.pieces if _name(p) not in secrets]), secrets


def pop_query_param(url: str, name: str) -> tuple[str, str | None]:
    """The URL without query parameter `name`, and that parameter's last value.
    The other parameters are kept exactly as written."""
    query = _Query.of(url)
    if query is None:
        return url, None
    values = [value for found, value in _query_pairs(query.text) if found == name]
    if not values:
        return url, None
    return query.with_pieces([p for p in query.pieces if _name(p) != name]), values[-1]


@dataclass(frozen=True)
class _Query:
    """A URL cut around its query: what comes before '?', the query, and '#...'."""

    before: str
    text: str
    after: str  # the fragment with its '#', or ''

    @classmethod
    def of(cls, url: str) -> _Query | None:
        before, question, rest = url.partition("?")
        if not question:
            return None
        text, hash_, fragment = rest.partition("#")
        return cls(before, text, hash_ + fragment)

    @property
    def pieces(self) -> list[str]:
        """`name=value` pieces as written (empty pieces dropped)."""
        return [piece for piece in self.text.split("&") if piece]

    def with_pieces(self, pieces: list[str]) -> str:
        """The URL with these pieces as its query (none: no '?')."""
        query = "?" + "&".join(pieces) if pieces else ""
        return f"{self.before}{query}{self.after}"


def _name(piece: str) -> str:
    return unquote(piece.partition("=")[0])


def database_of(url: str) -> str:
    """The database a server URL names (its path), '' when none."""
    return unquote(urlsplit(url).path.lstrip("/"))


def with_database(url: str, database: str) -> str:
    """The same server URL naming another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def quote_value(value: str) -> str:
    """A query parameter value, percent-encoded as server_url encodes one."""
    return quote(value, safe="/:,")


def server_url(
    scheme: str,
    *,
    host: str | None,
    port: str | None,
    user: str | None,
    password: str | None,
    database: str | None,
    query: list[tuple[str, str]] | None = None,
) -> str:
    """A server URL from its parts, each percent-encoded (a password may hold any
    character; the result parses back to exactly these parts)."""
    userinfo = ""
    if user is not None or password is not None:
        userinfo = quote(user or "", safe="")
        if password is not None:
            userinfo += ":" + quote(password, safe="")
        userinfo += "@"
    hostport = host or ""
    if ":" in hostport and not hostport.startswith("["):
        hostport = f"[{hostport}]"  # an IPv6 address
    if port:
        if not port.isdigit():
            raise ConfigError(f"the port {port!r} is not a number")
        hostport += f":{port}"
    url = f"{scheme}://{userinfo}{hostport}/{quote(database or '', safe='')}"
    if query:
        url += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='/:,')}" for k, v in query)
    return url
