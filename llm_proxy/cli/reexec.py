"""Keep a long-running process's secrets out of its command line.

Every user of the machine can read a process's command line (`ps`,
/proc/PID/cmdline) for as long as it runs; its environment only its own user
and root can. Python cannot overwrite its argv in place, so `llm-proxy server
--database-url URL` executes itself again, same PID, with the URL moved to
DATABASE_URL, which the flag was overriding anyway: the new process resolves
exactly the same settings.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

URL_OPTION = "--database-url"
URL_VARIABLE = "DATABASE_URL"


def without_option(args: Sequence[str], option: str, value: str) -> list[str] | None:
    """`args` without `option value` and `option=value`; None when neither is there."""
    kept: list[str] = []
    found = False
    index = 0
    while index < len(args):
        token = args[index]
        if token == option and index + 1 < len(args) and args[index + 1] == value:
            found, index = True, index + 2
        elif token == f"{option}={value}":
            found, index = True, index + 1
        else:
            kept.append(token)
            index += 1
    return kept if found else None


def command_without_option(
    orig_argv: Sequence[str], argv: Sequence[str], option: str, value: str
) -> list[str] | None:
    """The full command line to execute again (interpreter, its options, `-m
    module` or script, arguments) with `option value` left out; None when this
    process's arguments do not carry it (called in-process, by a test runner)."""
    args = list(argv[1:])
    prefix_length = len(orig_argv) - len(args)
    if prefix_length < 1 or list(orig_argv[prefix_length:]) != args:
        return None  # not started with these arguments
    kept = without_option(args, option, value)
    return None if kept is None else [*orig_argv[:prefix_length], *kept]


# Options whose value may hold a password, and the variable each one overrides.
SECRET_OPTIONS = {
    URL_OPTION: URL_VARIABLE,
    "--lock-url": "LLM_PROXY_MIGRATION_DATABASE_URL",
}


def move_database_url_to_environment(url: str) -> None:
    """Execute this process again with `--database-url URL` moved to DATABASE_URL;
    returns only when the URL is not on this process's command line."""
    move_secrets_to_environment({URL_OPTION: url})


def move_secrets_to_environment(values: dict[str, str]) -> None:
    """Execute this process again with each `--option VALUE` of `values` (keys from
    SECRET_OPTIONS) moved to its variable; returns only when none of them is on
    this process's command line."""
    orig_argv, argv = list(sys.orig_argv), list(sys.argv)
    moved: dict[str, str] = {}
    for option, value in values.items():
        command = command_without_option(orig_argv, argv, option, value)
        if command is None:
            continue
        moved[SECRET_OPTIONS[option]] = value
        prefix = len(orig_argv) - len(argv) + 1
        orig_argv, argv = command, [argv[0], *command[prefix:]]
    if not moved:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, orig_argv, {**os.environ, **moved})
