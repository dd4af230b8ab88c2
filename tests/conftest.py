"""Shared test settings: small thread counts and the skip-unless-CI rule for system components."""

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

IN_CI = os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason`` on a laptop that lacks a system component; fail loudly under CI=true."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


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

    24 clips of 6 s, a few training steps, the 28 real library tracks indexed: enough for the demo,
    the study and the CLI to run end to end.
    """
    from vmnet_core.starter.pipeline import StarterSettings, build_starter_bundle

    settings = StarterSettings(clips=24, seconds=6.0, max_steps=40, val_every=20, workers=2)
    return build_starter_bundle(tmp_path_factory.mktemp("starter") / "bundle", settings, progress=False)
