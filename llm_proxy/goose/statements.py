"""The statements of one section of a goose file, stored compactly (pure: no I/O).

A data migration can hold millions of statements. As separate strings they would cost
about 50 bytes of object header each on top of their text, and a second copy of the file;
here a statement that is one stretch of the file's text (nearly all: one line, or
consecutive lines joined by LF) is kept as its start and end offsets, 16 bytes, and sliced
out when asked for. The others (lines changed by ENVSUB, CRLF line ends, an annotation
between two of its lines) are kept as strings.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

__all__ = ["OWN", "Lines", "Statements"]

OWN = -1  # a start offset that means "kept as a string"


class Statements(Sequence[str]):
    """A read-only sequence of statements over ``text`` (equal to a list of the same
    strings)."""

    __slots__ = ("_bounds", "_lines", "_own", "_text")

    def __init__(
        self,
        text: str = "",
        bounds: array[int] | None = None,
        lines: array[int] | None = None,
        own: dict[int, str] | None = None,
    ) -> None:
        """``bounds``: start and end offsets in ``text`` of each statement (OWN, OWN for
        the ones in ``own``, by index); ``lines``: the line each starts on (0: unknown).
        The parser builds these arrays itself: a call per statement would cost more."""
        self._text = text
        self._bounds = array("q") if bounds is None else bounds
        self._lines = array("q") if lines is None else lines
        self._own = {} if own is None else own

    @classmethod
    def of(cls, statements: Iterable[str]) -> Statements:
        """Statements kept as strings (no text to point into)."""
        result = cls()
        for statement in statements:
            result._own[len(result)] = statement
            result._bounds.extend((OWN, OWN))
            result._lines.append(0)
        return result

    @property
    def copies(self) -> int:
        """How many statements are kept as strings of their own (not offsets)."""
        return len(self._own)

    def line(self, index: int) -> int | None:
        """The 1-based line statement ``index`` starts on in the file (None: not known)."""
        return self._lines[index] or None

    @property
    def lines(self) -> Lines:
        """The line of every statement, without holding on to the text."""
        return Lines(self._lines)

    def chunks(self, index: int, size: int = 1 << 20) -> Iterator[str]:
        """Statement ``index`` in pieces of ``size`` characters, for writing a huge one out
        without a copy of it whole."""
        start = self._bounds[2 * index]
        if start == OWN:
            text, start, end = self._own[index], 0, len(self._own[index])
        else:
            text, end = self._text, self._bounds[2 * index + 1]
        for begin in range(start, end, size):
            yield text[begin : min(begin + size, end)]

    def __len__(self) -> int:
        return len(self._bounds) // 2

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        start = self._bounds[2 * index]  # IndexError past the end, as a list
        if start == OWN:
            return self._own[index]
        return self._text[start : self._bounds[2 * index + 1]]

    def __iter__(self) -> Iterator[str]:
        text, bounds, own = self._text, self._bounds, self._own
        for index in range(len(bounds) // 2):
            start = bounds[2 * index]
            yield own[index] if start == OWN else text[start : bounds[2 * index + 1]]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Statements | list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable while parsing, like a list

    def __repr__(self) -> str:
        return repr(list(self))


class Lines(Sequence[int | None]):
    """The 1-based line each statement starts on (None where not known), over an array."""

    __slots__ = ("_numbers",)

    def __init__(self, numbers: array[int]) -> None:
        self._numbers = numbers

    def __len__(self) -> int:
        return len(self._numbers)

    @overload
    def __getitem__(self, index: int) -> int | None: ...
    @overload
    def __getitem__(self, index: slice) -> list[int | None]: ...
    def __getitem__(self, index: int | slice) -> int | None | list[int | None]:
        if isinstance(index, slice):
            return [number or None for number in self._numbers[index]]
        return self._numbers[index] or None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Lines | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(list(self))
