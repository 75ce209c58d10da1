"""`migrate validate --check-db`: a database's goose_db_version rows, as findings.

Read only, like `status`. goose takes no migration lock, so goose and
llm-proxy migrating one database at the same moment can both apply a file:
its version gets two rows and its changes are made twice. Rules:
``duplicate-row`` and ``unknown-version`` are errors, ``rolled-back-row`` (an
older goose's rollback, valid but read differently by goose's `up`) a warning.
"""

from __future__ import annotations

from llm_proxy.config import Settings
from llm_proxy.errors import ValidateError
from llm_proxy.goose.history import DUPLICATE, NO_FILE, ROLLED_BACK
from llm_proxy.migrate.project import Project

from .lint import ERROR, WARNING, Finding

RULES = {
    DUPLICATE: ("duplicate-row", ERROR),
    NO_FILE: ("unknown-version", ERROR),
    ROLLED_BACK: ("rolled-back-row", WARNING),
}


def check_database(settings: Settings) -> list[Finding]:
    """One finding per problem of the rows of the database `settings` names;
    ValidateError when there is no such database to read."""
    if settings.dialect.database_missing(settings):
        raise ValidateError(f"--check-db: database file does not exist: {settings.where}")
    project = Project.load(settings)
    state = project.read_state(with_journal=False)
    findings = []
    for problem in state.recorded.goose.problems(project.graph.by_goose_version()):
        rule, severity = RULES[problem.kind]
        findings.append(Finding(settings.where, None, severity, rule, problem.message))
    return findings
