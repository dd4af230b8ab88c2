"""The house rules of imports, read from the source with ``ast`` (every import, also inside functions).

- ``vmnet_core`` layers import only downward: foundation < media < features < datasets, learn <
  bundle < starter < cli.
- ``vmnet_core`` imports neither ``demo`` nor ``study``; ``demo`` and ``study`` never import each other.
- Gradio only in ``demo/``, ``study/`` and ``app.py``; SQLAlchemy (and Alembic) only in ``study/``.
- ``vmnet_testkit`` (helpers of the tests and benchmarks) is imported by tests and benchmarks only.
- ``bench/`` imports the installed packages: it never edits ``sys.path`` and never imports ``tests/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# rank of each part of vmnet_core: a module may import parts of the same or a lower rank only
LAYER_RANK = {
    "errors": 0, "atomic_io": 0, "paths": 0,
    "media": 1,
    "features": 2,
    "datasets": 3, "learn": 3,
    "bundle": 4,
    "starter": 5,
    "cli": 6,
}
# peers of equal rank that must not import each other
SEPARATE_PEERS = {("datasets", "learn"), ("learn", "datasets")}


def python_files(*parts: str) -> list[Path]:
    files: list[Path] = []
    for part in parts:
        path = ROOT / part
        files += [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))
    return [f for f in files if "migrations/versions" not in f.as_posix()]


def imported_modules(path: Path) -> set[str]:
    """Every dotted module name ``path`` imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def core_part(dotted: str) -> str | None:
    """``vmnet_core.learn.train`` → ``learn``; ``vmnet_core`` itself → None."""
    parts = dotted.split(".")
    return parts[1] if parts[0] == "vmnet_core" and len(parts) > 1 else None


def test_every_core_module_belongs_to_a_layer():
    for path in python_files("vmnet_core"):
        rel = path.relative_to(ROOT / "vmnet_core")
        part = rel.parts[0].removesuffix(".py")
        assert part in LAYER_RANK or part == "__init__", f"{rel} is in no layer; add it to LAYER_RANK"


def test_core_layers_import_only_downward():
    upward = []
    for path in python_files("vmnet_core"):
        rel = path.relative_to(ROOT / "vmnet_core")
        own = rel.parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        for name in imported_modules(path):
            other = core_part(name)
            if other is None or other == own or other not in LAYER_RANK:
                continue
            if LAYER_RANK[other] > LAYER_RANK[own] or (own, other) in SEPARATE_PEERS:
                upward.append(f"{rel} imports {name}")
    assert not upward, "imports that point up a layer:\n" + "\n".join(sorted(upward))


TEST_MODULES = tuple(sorted({"tests", "conftest", *(p.stem for p in (ROOT / "tests").rglob("*.py"))}))
"""Names a file under ``tests/`` can be imported by when ``tests/`` is on the path."""


@pytest.mark.parametrize("package, forbidden", [
    ("vmnet_core", ("demo", "study", "gradio", "gradio_client", "sqlalchemy", "alembic", "fastapi", "uvicorn",
                    "vmnet_testkit")),
    ("demo", ("study", "sqlalchemy", "alembic", "vmnet_testkit")),
    ("study", ("demo", "vmnet_testkit")),
    ("app.py", ("vmnet_testkit",)),
    ("webguard", ("vmnet_testkit",)),
    ("bench", TEST_MODULES),
    ("vmnet_testkit", TEST_MODULES),
])
def test_packages_keep_out_of_each_other(package, forbidden):
    found = []
    for path in python_files(package):
        for name in imported_modules(path):
            if name.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not found, "\n".join(sorted(set(found)))


def test_bench_never_edits_sys_path():
    """Benchmarks run against the installed packages (``pip install -e .``), never a patched path."""
    found = [f"{path.relative_to(ROOT)}:{n}" for path in python_files("bench")
             for n, line in enumerate(path.read_text().splitlines(), 1) if "sys.path" in line]
    assert not found, "sys.path edited in bench/ (import the installed package instead):\n" + "\n".join(found)


def test_gradio_and_sqlalchemy_stay_in_their_places():
    allowed = {"gradio": ("demo/", "study/", "app.py", "tests/", "bench/", "vmnet_testkit/"),
               "sqlalchemy": ("study/", "tests/", "bench/", "vmnet_testkit/"), "alembic": ("study/", "tests/")}
    found = []
    for path in python_files("vmnet_core", "demo", "study", "app.py", "bench", "vmnet_testkit"):
        rel = path.relative_to(ROOT).as_posix()
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top in allowed and not rel.startswith(allowed[top]):
                found.append(f"{rel} imports {name}")
    assert not found, "\n".join(sorted(set(found)))


def test_core_import_graph_has_no_cycles():
    graph: dict[str, set[str]] = {}
    modules = {}
    for path in python_files("vmnet_core"):
        rel = path.relative_to(ROOT).with_suffix("")
        dotted = ".".join(rel.parts).removesuffix(".__init__")
        modules[dotted] = path
    for dotted, path in modules.items():
        graph[dotted] = {n for n in imported_modules(path) if n in modules and n != dotted}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])
