"""Alembic's commands, as llm-proxy's migrate API calls them.

Each builds the Alembic Config for the command's ``Run`` (so env.py and the
plugin find everything in it), lets Alembic do what its command does, and
turns Alembic's refusals into MigrateError.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from llm_proxy.errors import MigrateError, reason

from . import plugin, scripts
from .config import alembic_config
from .run import Run


@contextlib.contextmanager
def _refusals_as_migrate_errors(*, whole: bool = False) -> Iterator[None]:
    from alembic.util import CommandError

    try:
        yield
    except CommandError as exc:
        raise MigrateError(reason(exc, whole=whole)) from None


def _config(run: Run) -> Any:
    plugin.setup()  # from a source tree the entry point may not be installed
    config = alembic_config(run.settings, run)
    run.script_directory = scripts.for_run(run, config)
    return config


def _call(action: Callable[[Any], object], run: Run) -> None:
    config = _config(run)
    with _refusals_as_migrate_errors():
        action(config)


def upgrade(run: Run, destination: str) -> None:
    """Apply revisions up to `destination` ("heads", or a revision id)."""
    from alembic import command

    _call(lambda config: command.upgrade(config, destination), run)


def downgrade(run: Run, destination: str) -> None:
    """Roll back to `destination` ("base", or a revision id)."""
    from alembic import command

    _call(lambda config: command.downgrade(config, destination), run)


def stamp(run: Run, destination: str, *, purge: bool = False) -> None:
    """Record `destination` ("base", or a revision id) as reached, running nothing;
    env.py moves goose's rows with alembic_version."""
    from alembic import command

    _call(lambda config: command.stamp(config, destination, purge=purge), run)


def run_steps(run: Run, steps: Sequence[tuple[str, bool]]) -> None:
    """Apply (True) or roll back (False) exactly these revisions, one at a time, in
    this order. goose's down, redo and reset act on single versions, which
    Alembic's commands cannot always express: after an out-of-order apply the
    version to roll back is not a head, or sits above a version never applied."""
    from alembic.runtime.environment import EnvironmentContext

    run.steps = tuple(steps)
    config = _config(run)
    directory = run.script_directory
    with _refusals_as_migrate_errors(), EnvironmentContext(config, directory, fn=_no_plan):
        directory.run_env()


def _no_plan(_heads: Any, _context: Any) -> tuple[()]:
    return ()  # env.py runs Run.steps itself


def offline_script(run: Run, direction: str, revisions: str, output: TextIO | None = None) -> str:
    """The SQL Alembic would run for `revisions` ("start:end"), with no connection:
    returned, or with `output` written there as it comes (a big file's script is then
    never held whole) and "" returned."""
    from alembic import command

    buffer = io.StringIO() if output is None else _Unflushed(output)

    def action(config: Any) -> None:
        config.output_buffer = buffer
        if direction == "up":
            command.upgrade(config, revisions, sql=True)
        else:
            command.downgrade(config, revisions, sql=True)

    _call(action, run)
    if output is not None:
        output.flush()
        return ""
    assert isinstance(buffer, io.StringIO)
    return buffer.getvalue()


class _Unflushed:
    """A text stream whose flush() waits for the end: Alembic flushes after every
    statement, one system call each on a terminal or pipe."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.write = stream.write

    def flush(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def new_revision(run: Run, message: str) -> Path:
    """`alembic revision -m MESSAGE`, from the project's template."""
    from alembic import command

    config = _config(run)
    output = io.StringIO()
    with contextlib.redirect_stdout(output), _refusals_as_migrate_errors(whole=True):
        script = command.revision(config, message=message)
    created = script if isinstance(script, list) else [script]
    if not created or created[0] is None:
        raise MigrateError("Alembic did not write a revision")
    return Path(created[0].path)
