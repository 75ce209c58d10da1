"""The plugin is installed machine-wide (Alembic loads every ``alembic.plugins``
entry point): a project that names no goose_directory must behave exactly as
without it, and a goose project must never run with the plugin missing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import SETTINGS_ENV, sqlite_dump
from stock_alembic import copy_project

# Runs Alembic's command line as `alembic` does, optionally with our entry point
# hidden, as if llm-proxy were not installed.
ALEMBIC_CLI = textwrap.dedent(
    """
    import sys
    from importlib import metadata

    if sys.argv.pop(1) == "without":
        entry_points = metadata.entry_points

        def filtered(**selection):
            found = entry_points(**selection)
            if selection.get("group") != "alembic.plugins":
                return found
            return metadata.EntryPoints(e for e in found if not e.value.startswith("llm_proxy"))

        metadata.entry_points = filtered
    from alembic.config import main

    main(argv=sys.argv[1:], prog="alembic")
    """
)

# What a tool sees of the ScriptDirectory, and which llm_proxy modules it pulled in.
PROBE = textwrap.dedent(
    """
    import sys
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    directory = ScriptDirectory.from_config(Config("alembic.ini"))
    print(type(directory).__module__, type(directory).__qualname__)
    print(sorted(directory.get_heads()), [r.revision for r in directory.walk_revisions()])
    print(type(directory.revision_map).__qualname__)
    print(sorted(m for m in sys.modules if m.startswith("llm_proxy")))
    """
)


def run(mode: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    return subprocess.run(
        [sys.executable, "-c", ALEMBIC_CLI, mode, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def plain_project(tmp_path: Path) -> Path:
    """`alembic init` with two revisions, and a goose directory lying right there
    that the configuration does not name."""
    root = tmp_path / "plain"
    root.mkdir()
    assert run("with", ["init", "migrations"], root).returncode == 0
    ini = root / "alembic.ini"
    ini.write_text(
        ini.read_text().replace("driver://user:pass@localhost/dbname", "sqlite:///app.db")
    )
    for message in ("first", "second"):
        made = run("with", ["revision", "-m", message], root)
        assert made.returncode == 0, made.stderr
    (root / "sql").mkdir()
    (root / "sql" / "00001_x.sql").write_text("-- +goose Up\nCREATE TABLE x (id int);\n")
    return root


def test_a_project_without_goose_directory_is_exactly_as_without_the_plugin(
    plain_project: Path, tmp_path: Path
) -> None:
    outcomes = {}
    for mode in ("with", "without"):
        copy = tmp_path / mode
        subprocess.run(["cp", "-r", str(plain_project), str(copy)], check=True)
        steps = [
            ["history", "--verbose"],
            ["heads"],
            ["upgrade", "head", "--sql"],
            ["upgrade", "head"],
            ["current"],
            ["downgrade", "-1"],
            ["current"],
        ]
        results = [run(mode, step, copy) for step in steps]
        probe = subprocess.run(
            [sys.executable, "-c", PROBE], cwd=copy, capture_output=True, text=True
        )
        assert probe.returncode == 0, probe.stderr
        outcomes[mode] = {
            "commands": [
                (r.returncode, r.stdout.replace(str(copy), "<dir>"), r.stderr) for r in results
            ],
            "database": sqlite_dump(copy / "app.db"),
            "probe": probe.stdout.splitlines()[:3],
            "modules": probe.stdout.splitlines()[3],
        }
    assert outcomes["with"]["commands"] == outcomes["without"]["commands"]
    assert outcomes["with"]["database"] == outcomes["without"]["database"]
    assert outcomes["with"]["probe"] == outcomes["without"]["probe"]
    # Loading the entry point imports the plugin; nothing else of llm-proxy is read.
    imported = set(re.findall(r"'([\w.]+)'", outcomes["with"]["modules"]))
    assert imported <= {
        "llm_proxy",
        "llm_proxy.bridge",
        "llm_proxy.bridge.plugin",
        "llm_proxy.bridge.keys",
        "llm_proxy.bridge.alembic_api",
    }, sorted(imported)


def test_a_goose_project_without_the_plugin_refuses_to_run(tmp_path: Path) -> None:
    """An Alembic too old to load plugins (or the entry point missing) would see
    no goose revision and report success having applied nothing."""
    project = copy_project(tmp_path / "project")
    db = tmp_path / "x.db"
    env_ini = project / "alembic.ini"
    env_ini.write_text(
        env_ini.read_text().replace("sqlite:///data/llm-proxy.db", f"sqlite:///{db}")
    )
    result = run("without", ["upgrade", "head"], project)
    assert result.returncode != 0
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("FAILED: ") and "plugin" in last, result.stdout + result.stderr
    assert not db.exists() or sqlite_dump(db) == ""


def test_the_declared_alembic_range_is_the_one_the_plugin_needs() -> None:
    """Alembic loads plugins from 1.18 on; the private API (alembic_api.py) is
    checked up to the declared upper bound."""
    import tomllib
    from importlib.metadata import version

    from conftest import REPO

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (alembic,) = [d for d in project["dependencies"] if d.startswith("alembic")]
    assert alembic == "alembic>=1.18,<1.21"
    installed = tuple(int(p) for p in version("alembic").split(".")[:2])
    assert (1, 18) <= installed < (1, 21)


def test_goose_directory_named_only_for_another_dialect_means_python_revisions_only(
    tmp_path: Path,
) -> None:
    project = copy_project(tmp_path / "project")
    ini = project / "alembic.ini"
    text = ini.read_text().replace("goose_directory = %(here)s/sql\n", "")
    text = text.replace("goose_directory_postgresql = %(here)s/sql/postgres\n", "")
    ini.write_text(text.replace("sqlite:///data/llm-proxy.db", f"sqlite:///{tmp_path / 'x.db'}"))
    history = run("with", ["history"], project)
    assert history.returncode == 0, history.stderr
    assert history.stdout == ""  # no goose file of MySQL's runs on SQLite
    assert run("with", ["upgrade", "head"], project).returncode == 0


def test_a_connection_attribute_of_another_kind_is_one_line(tmp_path: Path) -> None:
    from alembic.config import Config
    from alembic.util import CommandError

    from alembic import command

    project = copy_project(tmp_path / "project")
    config = Config(str(project / "alembic.ini"))
    config.attributes["connection"] = "sqlite:///x.db"
    with pytest.raises(CommandError) as refused:
        command.upgrade(config, "head")
    assert str(refused.value) == (
        'attributes["connection"] must be a SQLAlchemy Connection or Engine, not str'
    )
