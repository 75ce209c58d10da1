"""`llm-proxy migrate create` and `llm-proxy migrate fix`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import cli, settings_for, write_migration
from test_mixed_graph import goose_file, python_revision
from test_models import copy_project, run_alembic

from llm_proxy.goose.parser import parse


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project (shipped goose files 00001..00006), as the working directory."""
    root = copy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    return root


def created_path(stdout: str) -> Path:
    first = stdout.splitlines()[0]
    assert first.startswith("Created new file: ")
    return Path(first.removeprefix("Created new file: "))


# ---------------------------------------------------------------- create --sql


def test_create_sql_sequential_is_the_default(project: Path) -> None:
    result = cli("migrate", "create", "Add Webhooks")
    assert result.exit_code == 0, result.stderr
    path = created_path(result.stdout)
    assert path == project / "sql" / "00007_add_webhooks.sql"
    text = path.read_text()
    assert not text.startswith("-- llm-proxy:")  # it simply follows 00006
    # A valid goose file: Up and Down sections that parse.
    assert parse(text, "up").statements and parse(text, "down").statements
    assert (project / "sql" / "postgres" / "00007_add_webhooks.sql").exists() is False


def test_create_sql_keeps_the_directory_padding(tmp_path: Path) -> None:
    directory = tmp_path / "three"
    directory.mkdir()
    write_migration(directory, "001_first.sql", "SELECT 1;")
    write_migration(directory, "20240102150405_stamp.sql", "SELECT 1;")  # ignored for numbering
    result = cli("migrate", "create", "second", "--migrations-dir", str(directory), "--sql")
    assert result.exit_code == 0, result.stderr
    assert created_path(result.stdout) == directory / "002_second.sql"


def test_create_sql_timestamp(project: Path) -> None:
    before = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    result = cli("migrate", "create", "stamp me", "--timestamp")
    assert result.exit_code == 0, result.stderr
    path = created_path(result.stdout)
    match = re.fullmatch(r"(\d{14})_stamp_me\.sql", path.name)
    assert match, path.name
    stamp = datetime.strptime(match.group(1), "%Y%m%d%H%M%S")
    after = datetime.now(UTC).replace(tzinfo=None)
    assert before <= stamp <= after  # UTC, not local time: ordering, no time bound


def test_create_sql_after_python_revisions_writes_the_marker(project: Path, tmp_path: Path) -> None:
    python_revision(project, "py1", "00006")
    python_revision(project, "py2", "00006")  # two tips: the new file merges them
    result = cli("migrate", "create", "merge point")
    assert result.exit_code == 0, result.stderr
    path = created_path(result.stdout)
    assert path.read_text().splitlines()[0] == "-- llm-proxy: after py1, py2"
    assert "runs after py1, py2" in result.stdout
    heads = run_alembic("heads", cwd=project, db=tmp_path / "h.db")
    assert heads.stdout.strip() == "00007 (head)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("!!!",), "has no letters or digits"),
        (("x", "--python", "--timestamp"), "apply to goose (.sql) files only"),
    ],
)
def test_create_refusals(project: Path, args: tuple[str, ...], message: str) -> None:
    before = sorted(p.name for p in (project / "sql").iterdir())
    result = cli("migrate", "create", *args)
    assert result.exit_code != 0
    assert message in result.stderr
    assert sorted(p.name for p in (project / "sql").iterdir()) == before


# ---------------------------------------------------------------- create --python


def normalized(path: Path) -> str:
    """A revision file with its id and date taken out."""
    text = path.read_text()
    revision = re.search(r"^revision: str = '(\w+)'", text, re.MULTILINE).group(1)
    text = text.replace(revision, "REV")
    return re.sub(r"Create Date: .*", "Create Date: DATE", text)


def test_create_python_matches_alembic_revision(project: Path, tmp_path: Path) -> None:
    ours = cli("migrate", "create", "add notes", "--python")
    assert ours.exit_code == 0, ours.stderr
    ours_path = created_path(ours.stdout)
    assert ours_path.parent == project / "alembic" / "versions"
    assert ours_path.name.endswith("_add_notes.py")
    assert "down_revision: str | Sequence[str] | None = '00006'" in ours_path.read_text()

    moved = tmp_path / "ours.py"
    ours_path.rename(moved)  # so that the stock revision also chains to 00006
    stock = run_alembic("revision", "-m", "add notes", cwd=project, db=tmp_path / "s.db")
    assert stock.returncode == 0, stock.stderr
    (stock_path,) = (project / "alembic" / "versions").glob("*_add_notes.py")
    assert normalized(moved) == normalized(stock_path)


def test_create_python_chains_to_a_python_head(project: Path) -> None:
    python_revision(project, "py1", "00006")
    result = cli("migrate", "create", "next one", "--python")
    assert result.exit_code == 0, result.stderr
    assert "down_revision: str | Sequence[str] | None = 'py1'" in (
        created_path(result.stdout).read_text()
    )


def _revision_files(project: Path) -> list[str]:
    # Loading revisions may write __pycache__ there; only the files matter.
    versions = project / "alembic" / "versions"
    return sorted(p.name for p in versions.iterdir() if p.name != "__pycache__")


def test_create_python_with_several_heads_asks_for_a_merge(project: Path) -> None:
    python_revision(project, "left", "00006")
    python_revision(project, "right", "00006")
    before = _revision_files(project)
    result = cli("migrate", "create", "ambiguous", "--python")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert "Multiple heads" in line and "merge" in line
    assert _revision_files(project) == before


# ---------------------------------------------------------------- fix


def test_fix_renames_timestamp_files_in_order(project: Path) -> None:
    sql = project / "sql"
    goose_file(project, "20240102150405_first.sql", "t1")
    goose_file(
        project, "20240102150406_second.sql", "t2", marker="-- llm-proxy: after 20240102150405"
    )
    result = cli("migrate", "fix")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"RENAMED {sql / '20240102150405_first.sql'} => {sql / '00007_first.sql'}",
        f"RENAMED {sql / '20240102150406_second.sql'} => {sql / '00008_second.sql'}",
        f"UPDATED {sql / '00008_second.sql'} (its '-- llm-proxy: after' line)",
    ]
    assert (sql / "00008_second.sql").read_text().startswith("-- llm-proxy: after 00007\n")
    assert not list(sql.glob("2024*"))
    again = cli("migrate", "fix")
    assert again.stdout.strip() == "no timestamp-versioned files: nothing to fix"


def test_fix_keeps_line_endings_of_a_rewritten_marker(project: Path) -> None:
    sql = project / "sql"
    goose_file(project, "20240102150405_first.sql", "t1")
    crlf = sql / "20240102150406_second.sql"
    crlf.write_bytes(
        b"-- llm-proxy: after 20240102150405\r\n-- +goose Up\r\nSELECT 1;\r\n-- +goose Down\r\n"
    )
    assert cli("migrate", "fix").exit_code == 0
    assert (sql / "00008_second.sql").read_bytes() == (
        b"-- llm-proxy: after 00007\r\n-- +goose Up\r\nSELECT 1;\r\n-- +goose Down\r\n"
    )


def test_fix_refuses_when_a_python_revision_names_a_timestamp_version(project: Path) -> None:
    goose_file(project, "20240102150405_first.sql", "t1")
    python_revision(project, "py1", "20240102150405")
    result = cli("migrate", "fix")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert "py1_rev.py: names 20240102150405, which fix would rename to 00007" in line
    assert (project / "sql" / "20240102150405_first.sql").exists()


def test_python_api(project: Path) -> None:
    from llm_proxy.migrate import authoring

    settings = settings_for(db="unused.db")
    created = authoring.create(settings, "via api", kind=authoring.SQL)
    assert created.path.name == "00007_via_api.sql" and created.after == ()
    stamp = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    created = authoring.create(settings, "later", numbering=authoring.TIMESTAMP, now=stamp)
    assert created.path.name == "20300102030405_later.sql"
    result = authoring.fix(settings)
    assert [new.name for _, new in result.renamed] == ["00008_later.sql"]


def test_create_refuses_to_write_into_an_installed_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_proxy.migrate import authoring

    bundled = tmp_path / "site-packages" / "llm_proxy" / "_data"
    (bundled / "sql").mkdir(parents=True)
    monkeypatch.setattr(authoring, "packaged_data_dir", lambda: bundled)
    settings = settings_for(db="unused.db", migrations_dir=str(bundled / "sql"))
    with pytest.raises(authoring.MigrateError, match="belongs to the installed llm-proxy package"):
        authoring.create(settings, "nope")
    assert not list((bundled / "sql").iterdir())
