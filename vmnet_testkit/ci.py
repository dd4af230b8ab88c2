"""The skip-unless-CI rule for tests that need a system component (Chromium, PostgreSQL, ffmpeg)."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason`` on a laptop that lacks a system component; fail loudly under CI=true."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)
