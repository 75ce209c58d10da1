"""HTTP health and readiness for a running llm-proxy.

`GET /healthz` answers 200 while the process is up. `GET /readyz` answers 200
when the schema is at head and 503 with the pending migrations otherwise, or
503 with the reason when the database cannot be read in time
(`readiness.py`). `httpd.py` serves both.
"""

from __future__ import annotations

from .httpd import bind, listening_url, parse_addr, serve_until_signalled
from .readiness import DEFAULT_READINESS_TIMEOUT, Readiness, readiness_answer

__all__ = [
    "DEFAULT_READINESS_TIMEOUT",
    "Readiness",
    "bind",
    "listening_url",
    "parse_addr",
    "readiness_answer",
    "serve_until_signalled",
]
