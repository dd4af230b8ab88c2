"""docs/architecture.md opens with the map; every ``file:function`` it names must exist, and its
layer picture must list every part of ``vmnet_core``, so the map cannot silently rot."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
HOP = re.compile(r"\b((?:\w+/)*\w+\.py):([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)")
"""``path/to/file.py:name`` or ``path/to/file.py:Class.method``, the path from the repository root."""


def map_section() -> str:
    """The text of ``## The map``, up to the next second-level heading."""
    text = DOC.read_text()
    start = text.index("## The map")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def definitions(path: Path) -> set[str]:
    """Names defined anywhere in ``path`` (functions, also nested; classes) and ``Class.method``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names.update(f"{node.name}.{child.name}" for child in node.body
                         if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))
    return names


def test_the_doc_opens_with_the_map():
    lines = [line for line in DOC.read_text().splitlines() if line.strip()]
    assert lines[0].startswith("# ") and lines[1] == "## The map"


def test_every_hop_named_in_the_map_exists():
    hops = HOP.findall(map_section())
    assert len(hops) >= 30, f"the map names only {len(hops)} hops; was it cut?"
    missing = []
    for file, name in sorted(set(hops)):
        path = ROOT / file
        if not path.is_file():
            missing.append(f"{file} (no such file)")
        elif name not in definitions(path):
            missing.append(f"{file}:{name}")
    assert not missing, "the map in docs/architecture.md names what the code lacks:\n" + "\n".join(missing)


def test_the_map_shows_every_part_of_vmnet_core():
    core = ROOT / "vmnet_core"
    parts = {f"{p.name}/" for p in core.iterdir() if (p / "__init__.py").is_file()}
    parts |= {p.name for p in core.glob("*.py") if p.name != "__init__.py"}
    section = map_section()
    assert not {p for p in parts if p not in section}, "parts of vmnet_core missing from the map"
