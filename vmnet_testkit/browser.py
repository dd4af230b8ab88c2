"""A real browser for the UI tests: Debian's chromium, headless, driven by Playwright (never
``playwright install``). Skips with a clear reason where it is missing, and fails under CI=true
(:func:`vmnet_testkit.ci.skip_or_fail`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vmnet_testkit.ci import skip_or_fail

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def chromium_path() -> str:
    """The chromium executable (``/usr/bin/chromium`` or the one on PATH); skips or fails without one."""
    if CHROMIUM.is_file():
        return str(CHROMIUM)
    found = shutil.which("chromium")
    if found is None:
        skip_or_fail("Debian's chromium is not installed (apt-get install chromium)")
    return str(found)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Playwright ``Browser`` on :func:`chromium_path`, closed afterwards."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright Python package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
