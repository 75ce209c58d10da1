"""Go's idea of whitespace, which goose trims and splits words with (pure).

goose trims lines with strings.TrimSpace and splits words with bufio.ScanWords: both use
unicode.IsSpace. Python's own str.strip() also trims U+001C..U+001F, which Go keeps, so
every trim that must match goose passes this set explicitly.
"""

from __future__ import annotations

__all__ = ["GO_SPACE", "LEADING_REFUSED"]

GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# goose refuses an annotation line that starts with one of these two only; any other
# leading space is trimmed away like a trailing one.
LEADING_REFUSED = (" ", "\t")
