"""The Python API of llm-proxy migrations; the CLI is a thin layer over it.

    from llm_proxy import config, migrate
    settings = config.resolve(db="data/llm-proxy.db")
    result = migrate.up(settings, report=print)
    print(result.version)

Every function takes a ``config.Settings`` and, where it runs migrations, a
``report`` callable that receives progress lines (``OK   00001_x.sql
(1.2ms)``, lock waits, warnings). Failures raise ``llm_proxy.errors.
LlmProxyError`` subclasses whose message is one line for the user.

Applying: ``up``, ``up_by_one``, ``down``, ``down_to``, ``redo``, ``reset``.
Reading: ``status``, ``version``.
Offline and repairs: ``sql_script``, ``repair``, ``stamp`` (record a version
as reached without running anything).
Writing new migrations: ``create``, ``fix``; ``convert`` goose files into Python
revisions (which call ``goose_step``); ``retire_goose`` (and ``unretire_goose``)
once no goose binary reads the database.
For applications that keep the loaded project: ``Project`` and ``apply_up``.

Names are loaded on first use so that importing this package stays cheap.
"""

from __future__ import annotations

from llm_proxy.lazy import exports

_EXPORTS = {
    "up": "apply",
    "up_by_one": "apply",
    "apply_up": "apply",
    "down": "apply",
    "down_to": "apply",
    "redo": "apply",
    "reset": "apply",
    "UpResult": "apply",
    "status": "reading",
    "version": "reading",
    "Status": "reading",
    "StatusRow": "reading",
    "sql_script": "offline",
    "repair": "checksums",
    "stamp": "stamping",
    "create": "authoring",
    "fix": "authoring",
    "Created": "authoring",
    "FixResult": "authoring",
    "convert": "converting",
    "Converted": "converting",
    "retire_goose": "retiring",
    "unretire_goose": "retiring",
    "goose_step": "converting",
    "Project": "project",
    "DatabaseState": "project",
}

__all__ = sorted(_EXPORTS)
__getattr__ = exports(__name__, _EXPORTS)
