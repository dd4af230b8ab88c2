"""Where the study's concepts live: the pages reach the database only through ``study.service``."""

from __future__ import annotations

import ast
from pathlib import Path

STUDY = Path(__file__).resolve().parent.parent / "study"
PAGES = ["pages.py", "ui_rater.py", "ui_admin.py"]


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_pages_query_the_database_only_through_service():
    for page in PAGES:
        imported = _imported_modules(STUDY / page)
        bad = {m for m in imported if m.split(".")[0] == "sqlalchemy" or m == "study.models"}
        assert not bad, f"study/{page} imports {sorted(bad)}; call a study.service function instead"


def test_building_the_rater_page_leaves_the_environment_alone(tmp_path, monkeypatch):
    """The queue's analytics limits go to the page's own queue, not into ``os.environ``."""
    import os

    from study.db import Database
    from study.ui_rater import QUEUE_ANALYTICS_EVENTS, QUEUE_ANALYTICS_EVERY, build_rater_page

    names = ("GRADIO_ANALYTICS_CACHE_FREQUENCY", "GRADIO_ANALYTICS_MAX_EVENTS")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    db = Database(f"sqlite:///{tmp_path / 'study.db'}")
    try:
        page = build_rater_page(db)
    finally:
        db.dispose()
    assert not set(names) & set(os.environ)  # (Gradio itself sets HF_HUB_DISABLE_TELEMETRY)
    assert page._queue.ANALYTICS_MAX_EVENTS == int(QUEUE_ANALYTICS_EVENTS)
    assert page._queue.ANAYLTICS_CACHE_FREQUENCY == int(QUEUE_ANALYTICS_EVERY)
