"""docs/goose-to-alembic.md runs as written: every ```bash block, in order, in one
shell, in a copy of the project, with a stand-in for the goose binary on PATH."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import REPO, sqlite_rows
from test_models import copy_project

DOC = REPO / "docs" / "goose-to-alembic.md"
TESTS = Path(__file__).resolve().parent

# Acts as goose v3 does for `goose -dir DIR sqlite3 DB up|version`, through the
# goose_apply helper of conftest (which does what goose does for one file).
GOOSE_STAND_IN = textwrap.dedent(
    """\
    #!{python}
    import sqlite3, sys
    sys.path.insert(0, {tests!r})
    from conftest import goose_apply
    from llm_proxy.goose.files import discover

    args = sys.argv[1:]
    if len(args) != 5 or args[0] != "-dir" or args[2] != "sqlite3":
        sys.exit("goose stand-in: only `goose -dir DIR sqlite3 DB up|version`")
    directory, db, command = args[1], args[3], args[4]

    def applied():
        connection = sqlite3.connect(db)
        try:
            rows = connection.execute(
                "SELECT version_id, is_applied FROM goose_db_version ORDER BY id"
            ).fetchall()
        except sqlite3.OperationalError:
            rows = []
        connection.close()
        state = {{}}
        for version, is_applied in rows:
            state[version] = bool(is_applied)
        return state

    if command == "up":
        done = applied()
        for migration in discover(directory):
            if not done.get(migration.version):
                goose_apply(__import__("pathlib").Path(db), migration.path)
                print(f"OK   {{migration.name}} (0.00ms)")
    elif command != "version":
        sys.exit(f"goose stand-in: unsupported command {{command}}")
    current = max((v for v, ok in applied().items() if ok), default=0)
    print(f"goose: version {{current}}")
    """
)


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def test_the_page_has_commands_for_every_step() -> None:
    blocks = bash_blocks(DOC.read_text(encoding="utf-8"))
    script = "\n".join(blocks)
    for command in (
        "goose -dir sql sqlite3 demo.db up",
        "alembic check",
        "alembic revision --autogenerate",
        "llm-proxy migrate up",
        "llm-proxy migrate status",
        "llm-proxy migrate down",
        "alembic upgrade head",
        "llm-proxy migrate convert",
        "llm-proxy migrate retire-goose",
        "llm-proxy migrate retire-goose --drop-table",
    ):
        assert command in script, command


def test_the_stock_commands_section_covers_every_command() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Using stock Alembic commands", 1)[1].split("\n## ", 1)[0]
    for command in (
        "history",
        "heads",
        "branches",
        "show",
        "current",
        "upgrade",
        "downgrade",
        "-1",
        "--sql",
        "stamp",
        "--purge",
        "revision --autogenerate",
        "merge",
        "check",
        "-x allow_missing=true",
        "llm-proxy migrate stamp",
    ):
        assert f"`{command}" in section or f" {command}" in section, command


def test_the_walk_through_runs_as_written(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "checkout", package=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    goose = bin_dir / "goose"
    goose.write_text(GOOSE_STAND_IN.format(python=sys.executable, tests=str(TESTS)))
    goose.chmod(0o755)

    script = "\n".join(bash_blocks(DOC.read_text(encoding="utf-8")))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "LLM_PROXY_")) and k not in ("DB_DRIVER", "PYTHONPATH")
    }
    # A development install of this checkout: its package, its python, alembic, llm-proxy.
    env["PYTHONPATH"] = str(project)
    env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env["PATH"]])
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"

    # What the page says happened, happened.
    db = project / "demo.db"
    (revision_file,) = (project / "alembic" / "versions").glob("*_add_project_region.py")
    source = revision_file.read_text(encoding="utf-8")
    assert "down_revision: str | Sequence[str] | None = '00006'" in source
    revision = re.search(r"^revision: str = '(\w+)'", source, re.MULTILINE).group(1)
    assert sqlite_rows(db, "SELECT version_num FROM alembic_version") == [(revision,)]
    # "Finishing the move": every goose file has its Python revision, then goose is
    # retired (alembic.ini says so) and its table dropped, the last step.
    converted = sorted(p.stem for p in (project / "alembic" / "versions").glob("0000*.py"))
    assert converted == sorted(p.stem for p in (REPO / "sql").glob("*.sql"))
    assert not list((project / "sql").glob("*.sql"))
    assert "goose_retired = true" in (project / "alembic.ini").read_text(encoding="utf-8")
    assert "Current migration version: 6" in result.stdout
    assert "the last step, it cannot be undone" in result.stdout
    assert not sqlite_rows(db, "SELECT name FROM sqlite_master WHERE name = 'goose_db_version'")
    assert ("region",) in sqlite_rows(db, "SELECT name FROM pragma_table_info('projects')")
    assert "goose: version 6" in result.stdout
    assert f"OK   {revision_file.name}" in result.stdout
    assert "No new upgrade operations detected" in result.stdout
