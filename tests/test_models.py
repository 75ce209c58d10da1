"""The SQLAlchemy models against the goose-built schema: `alembic check` finds no
difference on every dialect, autogenerate writes a Python revision after the goose
head, and both `llm-proxy migrate` and the stock `alembic` run it.

Helpers here (project copies, the stock `alembic` in a subprocess) are shared by the
other issue-7 test modules.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, SQL_DIR, goose_apply, run_cli, settings_for, sqlite_rows

ALEMBIC = str(Path(sys.executable).parent / "alembic")
NO_CHANGES = "No new upgrade operations detected"
_RUNNER_ENV = (
    "DATABASE_URL",
    "DATABASE_PATH",
    "DB_DRIVER",
    "LLM_PROXY_MIGRATIONS_DIR",
    "LLM_PROXY_ALEMBIC_INI",
    "PYTHONPATH",
)


# ---------------------------------------------------------------- helpers


def copy_project(root: Path, *, package: bool = False) -> Path:
    """alembic.ini, alembic/ and sql/ of the repository in `root` (and the llm_proxy
    package when a test edits the models: run with PYTHONPATH=root to import it)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "alembic.ini", root / "alembic.ini")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "alembic", root / "alembic", ignore=ignore)
    shutil.copytree(SQL_DIR, root / "sql", ignore=ignore)
    (root / "alembic" / "versions").mkdir(exist_ok=True)
    if package:
        shutil.copytree(REPO / "llm_proxy", root / "llm_proxy", ignore=ignore)
    return root


def database_env(db: Path | str) -> dict[str, str]:
    """DATABASE_PATH for a SQLite file, DATABASE_URL for a server URL."""
    text = str(db)
    return {"DATABASE_URL": text} if "://" in text else {"DATABASE_PATH": text}


def run_alembic(
    *args: str, cwd: Path, db: Path | str, pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The stock `alembic` command in a subprocess, against `db`."""
    env = {k: v for k, v in os.environ.items() if k not in _RUNNER_ENV}
    env.update(database_env(db))
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [ALEMBIC, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def run_llm_proxy(
    *args: str, cwd: Path, db: Path | str, pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = database_env(db)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return run_cli(*args, cwd=cwd, env=env)


def goose_versions(db: Path) -> list[int]:
    return [r[0] for r in sqlite_rows(db, "SELECT version_id FROM goose_db_version ORDER BY id")]


def migrate_to_head(db: str | Path) -> None:
    from llm_proxy import migrate

    text = str(db)
    settings = settings_for(database_url=text) if "://" in text else settings_for(db=text)
    migrate.up(settings)


# ---------------------------------------------------------------- alembic check


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_alembic_check_finds_no_difference_at_head(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The models agree with what the goose files build, on every shipped dialect."""
    if dialect == "sqlite":
        db: str | Path = tmp_path / "head.db"
    else:
        db = request.getfixturevalue("postgres_url" if dialect == "postgresql" else "mysql_url")
    migrate_to_head(db)
    project = copy_project(tmp_path / "project")
    result = run_alembic("check", cwd=project, db=db)
    assert result.returncode == 0, result.stderr[-2000:]
    assert NO_CHANGES in result.stdout


def test_alembic_check_sees_drift_but_not_bookkeeping_tables(tmp_path: Path) -> None:
    db = tmp_path / "drift.db"
    migrate_to_head(db)
    project = copy_project(tmp_path / "project")
    connection = sqlite3.connect(db)
    with connection:
        # Ours (any llm_proxy_* table) and goose's/Alembic's tables are not schema.
        connection.execute("CREATE TABLE llm_proxy_scratch (id INTEGER PRIMARY KEY)")
    connection.close()
    assert NO_CHANGES in run_alembic("check", cwd=project, db=db).stdout

    connection = sqlite3.connect(db)
    with connection:
        connection.execute("ALTER TABLE projects ADD COLUMN nickname TEXT")
        connection.execute("DROP INDEX idx_audit_outcome")
    connection.close()
    result = run_alembic("check", cwd=project, db=db)
    assert result.returncode != 0
    assert "New upgrade operations detected" in result.stderr + result.stdout
    assert "nickname" in result.stderr + result.stdout
    assert "idx_audit_outcome" in result.stderr + result.stdout


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_server_defaults_match_the_goose_files(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """compare_server_default stays off in env (Alembic's comparison misreads
    `DEFAULT (UUID())` on MariaDB), so this test keeps the models' defaults honest."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from llm_proxy.bridge.env import include_object
    from llm_proxy.db import sqlite_reflection
    from llm_proxy.db.engine import create_engine
    from llm_proxy.models import Base

    sqlite_reflection.install()
    if dialect == "sqlite":
        settings = settings_for(db=str(tmp_path / "defaults.db"))
    else:
        settings = settings_for(database_url=request.getfixturevalue("postgres_url"))
    from llm_proxy import migrate

    migrate.up(settings)
    engine = create_engine(settings)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "compare_server_default": True,
                    "include_object": include_object,
                },
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_models_create_the_same_schema_as_goose(tmp_path: Path) -> None:
    """create_all from the models, checked against the models: names, indexes and
    the CHECK constraint are the goose files' (a second look from the other side)."""
    import sqlalchemy as sa

    from llm_proxy.models import AUDIT_OUTCOMES, Base

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'models.db'}")
    Base.metadata.create_all(engine)
    inspector = sa.inspect(engine)
    goose_db = tmp_path / "goose.db"
    migrate_to_head(goose_db)
    goose = sa.inspect(sa.create_engine(f"sqlite:///{goose_db}"))
    for table in ("projects", "tokens", "audit_events"):
        assert {c["name"] for c in inspector.get_columns(table)} == {
            c["name"] for c in goose.get_columns(table)
        }
        assert sorted(i["name"] for i in inspector.get_indexes(table)) == sorted(
            i["name"] for i in goose.get_indexes(table)
        )
    (check,) = inspector.get_check_constraints("audit_events")
    assert check["name"] == "chk_audit_outcome"
    assert all(f"'{outcome}'" in check["sqltext"] for outcome in AUDIT_OUTCOMES)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO projects (id, name, api_key) VALUES ('p', 'n', 'k')"
        )
        connection.exec_driver_sql("INSERT INTO tokens (token, project_id) VALUES ('t', 'p')")
        (token_id,) = connection.exec_driver_sql("SELECT id FROM tokens").one()
    # The server default makes a version-4 UUID, as sql/00004 does.
    assert re.fullmatch(r"\w{8}-\w{4}-4\w{3}-[89ab]\w{3}-\w{12}", token_id)
    engine.dispose()


# ---------------------------------------------------------------- SQLite FK actions


def test_pragma_actions_fill_what_reflection_left_out() -> None:
    from llm_proxy.db.sqlite_reflection import with_pragma_actions

    reflected = [
        {"constrained_columns": ["project_id"], "referred_table": "projects", "options": {}},
        {"constrained_columns": ["a"], "referred_table": "x", "options": {"ondelete": "SET NULL"}},
    ]
    pragma = [
        (0, 0, "projects", "project_id", "id", "NO ACTION", "CASCADE", "NONE"),
        (1, 0, "x", "a", "id", "CASCADE", "RESTRICT", "NONE"),
    ]
    fixed = with_pragma_actions(reflected, pragma)
    assert fixed[0]["options"] == {"ondelete": "CASCADE"}
    # What reflection found stands; only the missing action is added.
    assert fixed[1]["options"] == {"ondelete": "SET NULL", "onupdate": "CASCADE"}
    assert reflected[0]["options"] == {}  # the input is not mutated


def test_reflection_reports_on_delete_cascade_of_tokens(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from llm_proxy.db import sqlite_reflection

    db = tmp_path / "fk.db"
    migrate_to_head(db)
    sqlite_reflection.install()
    sqlite_reflection.install()  # idempotent
    engine = sa.create_engine(f"sqlite:///{db}")
    (key,) = sa.inspect(engine).get_foreign_keys("tokens")
    assert key["referred_table"] == "projects"
    assert key["options"] == {"ondelete": "CASCADE"}
    engine.dispose()


# ---------------------------------------------------------------- autogenerate, end to end

DESCRIPTION_LINE = "    description: Mapped[str | None] = mapped_column(Text)\n"


def add_project_description(package_root: Path) -> None:
    """The model change: projects.description, a nullable TEXT column."""
    models = package_root / "llm_proxy" / "models.py"
    anchor = "    api_key: Mapped[str] = mapped_column(Text)\n"
    text = models.read_text(encoding="utf-8")
    assert text.count(anchor) == 1
    models.write_text(text.replace(anchor, anchor + DESCRIPTION_LINE), encoding="utf-8")


def test_autogenerate_after_goose_head_end_to_end(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project", package=True)
    db = tmp_path / "app.db"
    # A database goose built: every shipped file, through the goose stand-in.
    for migration in sorted((project / "sql").glob("*.sql")):
        goose_apply(db, migration)
    connection = sqlite3.connect(db)
    with connection:
        connection.execute("INSERT INTO projects (id, name, api_key) VALUES ('p1', 'one', 'k')")
        connection.execute("INSERT INTO tokens (token, project_id) VALUES ('t1', 'p1')")
    connection.close()
    goose_before = goose_versions(db)

    add_project_description(project)
    generated = run_alembic(
        "revision",
        "--autogenerate",
        "-m",
        "add project description",
        cwd=project,
        db=db,
        pythonpath=project,
    )
    assert generated.returncode == 0, generated.stderr[-2000:]
    (revision_file,) = (project / "alembic" / "versions").glob("*_add_project_description.py")
    source = revision_file.read_text(encoding="utf-8")
    assert "down_revision: str | Sequence[str] | None = '00006'" in source
    assert "batch_op.add_column(sa.Column('description', sa.Text(), nullable=True))" in source
    revision = re.search(r"^revision: str = '(\w+)'", source, re.MULTILINE).group(1)

    up = run_llm_proxy("migrate", "up", cwd=project, db=db, pythonpath=project)
    assert up.returncode == 0, up.stderr
    assert up.stdout.splitlines()[0].startswith(f"OK   {revision_file.name}")
    assert goose_versions(db) == goose_before  # goose never sees a Python revision
    assert sqlite_rows(db, "SELECT version_num FROM alembic_version") == [(revision,)]
    assert ("description",) in sqlite_rows(db, "SELECT name FROM pragma_table_info('projects')")
    status = run_llm_proxy("migrate", "status", cwd=project, db=db, pythonpath=project)
    last = status.stdout.splitlines()[-1]
    assert last.endswith(f"-- {revision_file.name}") and "Pending" not in last
    assert NO_CHANGES in run_alembic("check", cwd=project, db=db, pythonpath=project).stdout

    # goose, run on the same database, still finds every file of its own applied:
    # its current version is the newest applied row, 6, and nothing is pending.
    assert goose_before == [0, 1, 2, 3, 4, 5, 6]
    assert sqlite_rows(db, "SELECT MIN(is_applied) FROM goose_db_version") == [(1,)]

    down = run_llm_proxy("migrate", "down", cwd=project, db=db, pythonpath=project)
    assert down.returncode == 0, down.stderr
    assert down.stdout.splitlines()[0].startswith(f"OK   {revision_file.name}")
    assert ("description",) not in sqlite_rows(db, "SELECT name FROM pragma_table_info('projects')")
    assert goose_versions(db) == goose_before
    # The batch rebuild of projects kept the rows and tokens' ON DELETE CASCADE.
    assert sqlite_rows(db, "SELECT token, project_id FROM tokens") == [("t1", "p1")]
    tokens_sql = sqlite_rows(db, "SELECT sql FROM sqlite_master WHERE name = 'tokens'")[0][0]
    assert "ON DELETE CASCADE" in tokens_sql

    upgrade = run_alembic("upgrade", "head", cwd=project, db=db, pythonpath=project)
    assert upgrade.returncode == 0, upgrade.stderr[-2000:]
    assert sqlite_rows(db, "SELECT version_num FROM alembic_version") == [(revision,)]
    assert goose_versions(db) == goose_before

    # The next model change chains after the Python head.
    models = project / "llm_proxy" / "models.py"
    anchor = "    token: Mapped[str] = mapped_column(KeyText)\n"
    text = models.read_text(encoding="utf-8")
    models.write_text(
        text.replace(anchor, anchor + "    note: Mapped[str | None] = mapped_column(Text)\n")
    )
    second = run_alembic(
        "revision", "--autogenerate", "-m", "token note", cwd=project, db=db, pythonpath=project
    )
    assert second.returncode == 0, second.stderr[-2000:]
    (second_file,) = (project / "alembic" / "versions").glob("*_token_note.py")
    assert f"down_revision: str | Sequence[str] | None = '{revision}'" in second_file.read_text()


def test_autogenerate_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project", package=True)
    migrate_to_head(postgres_url)
    add_project_description(project)
    generated = run_alembic(
        "revision",
        "--autogenerate",
        "-m",
        "describe",
        cwd=project,
        db=postgres_url,
        pythonpath=project,
    )
    assert generated.returncode == 0, generated.stderr[-2000:]
    (revision_file,) = (project / "alembic" / "versions").glob("*_describe.py")
    source = revision_file.read_text(encoding="utf-8")
    assert "op.add_column('projects', sa.Column('description', sa.Text()" in source
    assert "'00006'" in source
    up = run_llm_proxy("migrate", "up", cwd=project, db=postgres_url, pythonpath=project)
    assert up.returncode == 0, up.stderr
    check = run_alembic("check", cwd=project, db=postgres_url, pythonpath=project)
    assert NO_CHANGES in check.stdout, check.stderr[-2000:]
    down = run_llm_proxy("migrate", "down", cwd=project, db=postgres_url, pythonpath=project)
    assert down.returncode == 0, down.stderr
    assert down.stdout.startswith(f"OK   {revision_file.name}")
