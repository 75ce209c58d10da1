"""The package keeps its layers: each module imports only what lies below it.

    __main__ -> cli -> database, server -> validate -> migrate -> bridge
        -> revisions, store, db -> config, models -> dialects, goose -> urls -> errors, lazy

Peers on one layer do not import each other; inside a package, modules do
not import each other in a circle; only bridge/ imports Alembic; only
dialects/ tells databases apart by name. Imports inside functions count:
they are how the cheap paths stay cheap, not a way around the layers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "llm_proxy"

# Lowest first. A component is a top-level module or package of llm_proxy.
LAYERS: list[set[str]] = [
    {"errors", "lazy"},
    {"urls"},
    {"dialects", "goose"},
    {"config", "models"},
    {"revisions", "store", "db"},
    {"bridge"},
    {"migrate"},
    {"validate"},
    {"database", "server"},
    {"cli"},
    {"__main__"},
]
LAYER_OF = {component: index for index, layer in enumerate(LAYERS) for component in layer}
DIALECT_NAMES = {"sqlite", "sqlite3", "postgres", "postgresql", "pgx", "mysql", "mariadb"}


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(("llm_proxy", *parts)), path


def imported(name: str, path: Path) -> Iterator[str]:
    """Every llm_proxy module (or third-party top-level name) `path` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield module
            # `from . import x` imports the submodule x.
            yield from (f"{module}.{alias.name}" for alias in node.names)


def component(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "llm_proxy" and len(parts) > 1 else None


def known_modules() -> set[str]:
    return {name for name, _ in modules()}


def test_every_component_has_a_layer() -> None:
    components = {component(name) for name, _ in modules()} - {None}
    assert components <= set(LAYER_OF), sorted(components - set(LAYER_OF))


@pytest.mark.parametrize("name,path", list(modules()), ids=lambda v: str(v).split("/")[-1])
def test_imports_go_down_the_layers(name: str, path: Path) -> None:
    own = component(name)
    if own is None:
        return
    wrong = []
    for target in imported(name, path):
        other = component(target)
        if other is None or other == own:
            continue
        if LAYER_OF[other] >= LAYER_OF[own]:
            wrong.append(target)
    assert not wrong, f"{name} imports {sorted(set(wrong))}, which are not below it"


def test_no_import_circle_inside_a_package() -> None:
    known = known_modules()
    edges = {
        name: {t for t in imported(name, path) if t in known and t != name}
        for name, path in modules()
    }
    # Importing a package's __init__ from inside the package is how lazy
    # exports work; a package and its own modules are one unit here.
    for name in edges:
        edges[name] = {t for t in edges[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycle = trail[trail.index(target) :] + [target] if target in trail else [target]
                pytest.fail(f"import circle: {' -> '.join(cycle)}")
            if state.get(target) is None:
                visit(target, [*trail, target])
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])


def test_only_the_bridge_imports_alembic() -> None:
    offenders = [
        name
        for name, path in modules()
        if component(name) != "bridge"
        and any(t.split(".")[0] == "alembic" for t in imported(name, path))
    ]
    assert offenders == []


def _dialect_literals(tree: ast.AST) -> Iterator[int]:
    """Lines that compare with a database's name or key a table by it."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(
                isinstance(o, ast.Constant) and o.value in DIALECT_NAMES for o in operands
            ) or any(
                isinstance(o, (ast.Tuple, ast.List, ast.Set))
                and any(isinstance(e, ast.Constant) and e.value in DIALECT_NAMES for e in o.elts)
                for o in operands
            ):
                yield node.lineno
        elif isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
            if len([k for k in keys if k in DIALECT_NAMES]) >= 2:
                yield node.lineno


def test_only_dialects_tell_databases_apart_by_name() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}:{line}"
        for name, path in modules()
        if component(name) != "dialects"
        for line in _dialect_literals(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert found == []


def test_the_dialect_check_sees_a_branch() -> None:
    tree = ast.parse(
        'if settings.dialect.name == "sqlite":\n    pass\nx = {"mysql": 1, "postgresql": 2}'
    )
    assert list(_dialect_literals(tree)) == [1, 3]


def test_every_public_name_of_the_migrate_api_is_documented() -> None:
    from llm_proxy import migrate

    def documented(obj: object) -> bool:
        doc = obj.__doc__ or ""
        # A dataclass without a docstring gets its signature as __doc__.
        generated = isinstance(obj, type) and doc.startswith(f"{obj.__name__}(")
        return bool(doc.strip()) and not generated

    undocumented = [name for name in migrate.__all__ if not documented(getattr(migrate, name))]
    assert undocumented == []
    assert migrate.__doc__ and all(f"``{name}``" in migrate.__doc__ for name in ("up", "status"))
