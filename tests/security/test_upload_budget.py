"""What one client may upload within an hour is bounded (webguard.upload_budget, docs/security.md),
shown on a launched demo server with a 3-MB budget: raw uploads, each client named by the
``X-Forwarded-For`` header that uvicorn trusts from 127.0.0.1, and a real browser (from 127.0.0.1
itself) that reads the refusal in the page."""

from __future__ import annotations

import os

import httpx
import pytest

from vmnet_testkit.browser import chromium
from vmnet_testkit.demo_server import running_app
from vmnet_testkit.mediagen import make_video

BUDGET_MB = 3
ONE_UPLOAD = 1_600_000  # bytes: the second upload passes the budget, so the third is refused


@pytest.fixture(scope="module")
def base(tiny_bundle, tmp_path_factory):
    with running_app(tiny_bundle, tmp_path_factory.mktemp("upload-budget"), "--upload-gb-per-client",
                     str(BUDGET_MB / 1000), "--max-upload-mb", "5") as url:
        yield url


def _upload(http: httpx.Client, base: str, client: str, name: str) -> httpx.Response:
    """One raw upload of ``ONE_UPLOAD`` random bytes from ``client`` ("" for 127.0.0.1 itself)."""
    files = {"files": (name, os.urandom(ONE_UPLOAD), "video/mp4")}
    return http.post(f"{base}gradio_api/upload", files=files, headers={"X-Forwarded-For": client} if client else {})


def test_a_client_over_its_upload_budget_is_refused_until_it_has_aged_out(base):
    with httpx.Client(timeout=60) as http:
        first, second, third = (_upload(http, base, "203.0.113.20", f"clip{n}.mp4") for n in range(3))
        other_network = _upload(http, base, "2001:db8:9:1::1", "theirs.mp4")
        same_subscriber = [_upload(http, base, f"2001:db8:9:1::{n}", f"theirs{n}.mp4") for n in (2, 3)]
        page = http.get(base)

    assert first.status_code == second.status_code == 200 and first.json() and second.json()
    assert third.status_code == 429
    assert third.text.startswith(f"Your network has uploaded {BUDGET_MB} MB to this server in the last hour")
    assert 0 < int(third.headers["retry-after"]) <= 3600
    assert "wait about 60 minutes" in third.text  # the oldest counted bytes leave the window in about an hour
    # another client uploads as ever; addresses of one IPv6 /64 share a budget
    assert other_network.status_code == 200
    assert [r.status_code for r in same_subscriber] == [200, 429]
    assert page.status_code == 200  # the server serves on


@pytest.mark.browser
def test_the_page_says_why_an_upload_over_the_budget_is_refused(base, tmp_path):
    with httpx.Client(timeout=60) as http:  # the browser's own address (127.0.0.1) uses its budget first
        assert [_upload(http, base, "", f"mine{n}.mp4").status_code for n in range(2)] == [200, 200]
    video = make_video(tmp_path / "one-more.mp4", seconds=2, size=(160, 120), seed=3)
    with chromium() as browser:
        page = browser.new_page()
        page.goto(base)
        page.locator("#query-video input[type=file]").set_input_files(str(video))
        page.wait_for_selector(".toast-body", timeout=60_000)
        texts = page.locator(".toast-body").all_inner_texts()
    assert len(texts) == 1 and "Your network has uploaded 3 MB to this server in the last hour" in texts[0], texts
