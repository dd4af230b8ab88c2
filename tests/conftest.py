"""Shared test settings: small thread counts and the tiny starter bundle (helpers: ``vmnet_testkit``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


@pytest.fixture(scope="session", autouse=True)
def _quiet_threads():
    """Keep numeric libraries to the machine's cores so parallel tests do not oversubscribe."""
    try:
        import torch

        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    except ImportError:
        pass
    yield


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A small starter bundle built by the same code path as the app's default (once per session).

    48 clips of 30 s (full-length, like the default: shorter clips are zero-padded by the music
    descriptor and put the real tracks out of distribution), 60 training steps, the ablation, the
    evaluation and the 28 real library tracks indexed: a model that has learned (held-out R@1
    well above chance), built in about 2 minutes on an idle 2-core machine. Its work files stay
    beside it in ``<bundle>.work``. ``VMNET_TEST_BUNDLE=DIR`` reuses one built so before (a
    developer's shortcut; CI leaves it unset).
    """
    if os.environ.get("VMNET_TEST_BUNDLE"):
        return Path(os.environ["VMNET_TEST_BUNDLE"])
    from vmnet_core.starter.pipeline import StarterSettings, build_starter_bundle

    settings = StarterSettings(clips=48, seconds=30.0, max_steps=60, val_every=60, workers=2)
    return build_starter_bundle(tmp_path_factory.mktemp("starter") / "bundle", settings, progress=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db(request, tmp_path):
    """A fresh, migrated study database: the same test on a SQLite file and on a real PostgreSQL server."""
    from vmnet_testkit.study_helpers import open_test_database

    db = open_test_database(request.param, tmp_path)
    yield db
    db.dispose()
