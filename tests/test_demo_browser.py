"""The demo in a real browser: Debian's chromium, headless, driven by Playwright (never `playwright install`).

Uploads a generated video, waits for the results (each real track with the moment of it that fits
best), previews the top track's moment under the video and plays it, checks that a bad file and an
oversized file each give one message in the page, adds a music folder from the UI, and saves
screenshots to tests/out/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from demo.fair_queue import DEFAULT_JOBS_PER_CLIENT, too_many_jobs
from vmnet_testkit.browser import chromium
from vmnet_testkit.demo_server import ADMIN_PASSWORD, UPLOAD_LIMIT_MB, ServedDemo, shared_demo
from vmnet_testkit.mediagen import make_audio, make_video
from vmnet_testkit.queue_share import fn_index, hold_analysis_slots, join, join_when_free

pytestmark = pytest.mark.browser

OUT = Path(__file__).resolve().parent / "out"
WAIT_MS = 120_000


@pytest.fixture(scope="module")
def served(tiny_bundle: Path, tmp_path_factory) -> ServedDemo:
    return shared_demo(tiny_bundle, tmp_path_factory.getbasetemp() / "demo_server")


@pytest.fixture(scope="module")
def page(served: ServedDemo):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1700})
        page.goto(served.url)
        page.wait_for_selector("#query-video input[type=file]", state="attached", timeout=WAIT_MS)
        yield page


def _status_says(page, element_id: str, *needles: str) -> None:
    script = ("([id, needles]) => { const e = document.getElementById(id);"
              " return !!e && needles.some(n => e.innerText.includes(n)); }")
    page.wait_for_function(script, arg=[element_id, list(needles)], timeout=WAIT_MS)


def test_upload_a_video_get_music_and_play_a_preview(page, tmp_path):
    video = make_video(tmp_path / "my-holiday.mp4", seconds=4, size=(320, 240), seed=7)
    page.locator("#query-video input[type=file]").set_input_files(str(video))
    _status_says(page, "music-status", "analysed in", "from cache")
    rows = page.locator("#music-results tbody tr")
    assert rows.count() >= 1
    headers = [h.strip().lower() for h in page.locator("#music-results thead th").all_inner_texts()]
    assert "moment" in headers
    moments = re.findall(r"\d+:\d\d–\d+:\d\d", page.locator("#music-results").inner_text())
    assert moments, "no track shows the part of it that fits best"
    page.wait_for_function("() => document.querySelector('#track-player audio, #track-player [src]') !== null",
                           timeout=WAIT_MS)

    page.click("#preview-button")
    page.wait_for_function("() => { const v = document.querySelector('#preview-video video');"
                           " return !!v && v.src.includes('my-holiday-with-'); }", timeout=WAIT_MS)
    played = page.evaluate("""async () => {
        const v = document.querySelector('#preview-video video');
        v.muted = true;  // autoplay rules: a muted video may play without a user gesture
        await v.play();
        await new Promise(resolve => setTimeout(resolve, 1200));
        v.pause();
        return {time: v.currentTime, duration: v.duration, error: v.error && v.error.code};
    }""")
    assert played["error"] is None
    assert played["time"] > 0.3  # the browser decoded and played the H.264/AAC preview
    assert played["duration"] == pytest.approx(4.0, abs=0.2)
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / "demo-music-for-video.png"), full_page=True)


def _toasts(page) -> list[str]:
    return page.locator(".toast-body").all_inner_texts()


def _reload(page) -> None:
    """A fresh page: the upload box takes a new file, no messages left over."""
    page.reload()
    page.wait_for_selector("#query-video input[type=file]", state="attached", timeout=WAIT_MS)


def test_a_text_file_renamed_mp4_gives_one_sentence(page, tmp_path):
    _reload(page)
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n" * 50)
    page.locator("#query-video input[type=file]").set_input_files(str(fake))
    page.wait_for_selector(".toast-body", timeout=WAIT_MS)
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / "demo-bad-file.png"))
    texts = _toasts(page)
    assert len(texts) == 1 and "not a media file" in texts[0]
    assert "Traceback" not in texts[0]


def test_a_file_over_the_upload_limit_is_refused_in_the_page(page, tmp_path):
    _reload(page)
    big = tmp_path / "huge.mp4"
    big.write_bytes(b"\0" * int(1.5 * UPLOAD_LIMIT_MB * 1024 * 1024))
    page.locator("#query-video input[type=file]").set_input_files(str(big))
    page.wait_for_selector(".toast-body", timeout=WAIT_MS)
    texts = _toasts(page)
    assert len(texts) == 1 and "maximum allowed size" in texts[0]


def test_a_visitor_over_its_share_of_the_queue_reads_why(page, served, tmp_path):
    """The browser's address (127.0.0.1) already has its share of analyses waiting (raw joins queued
    behind other visitors' analyses): the page's upload is refused with the fair-queue sentence."""
    _reload(page)
    base = served.url
    busy = hold_analysis_slots(base, served.bundle, tmp_path, ["198.51.100.4", "198.51.100.5", "198.51.100.6"])
    with httpx.Client(timeout=30) as http:
        search = fn_index(base, "music_for_video")
        assert all(join(http, base, search, [None, 5, False]).status_code == 200
                   for _ in range(DEFAULT_JOBS_PER_CLIENT))
    video = make_video(tmp_path / "one-more.mp4", seconds=4, size=(320, 240), seed=8)
    page.locator("#query-video input[type=file]").set_input_files(str(video))
    page.wait_for_selector(".toast-body", timeout=WAIT_MS)
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / "demo-over-share.png"))
    assert not all(job.done() for job in busy), "the other analyses ended first: the share was never full"
    texts = _toasts(page)
    assert len(texts) == 1 and too_many_jobs(DEFAULT_JOBS_PER_CLIENT) in texts[0], texts
    for job in busy:
        job.result(timeout=300)
    with httpx.Client(timeout=30) as http:  # the queued joins have run: the next tests find the share free
        assert join_when_free(http, base, search, [None, 5, False]).status_code == 200


def test_the_operator_adds_a_music_folder_after_login_and_visitors_cannot(page, tmp_path_factory):
    _reload(page)
    assert page.get_by_role("tab", name="Add my music folder").count() == 0  # not on the public page
    base = page.url.split("#")[0].rstrip("/")
    folder = tmp_path_factory.getbasetemp() / "demo_server" / "music-root" / "more-music"  # inside --music-root
    make_audio(folder / "evening-piano.flac", seconds=4, freq=262, seed=5)
    page.goto(f"{base}/admin-music/", wait_until="domcontentloaded")
    page.get_by_label("username").fill("admin", timeout=WAIT_MS)
    page.get_by_label("password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Login").click()
    page.locator("#music-folder textarea, #music-folder input").first.fill(str(folder), timeout=WAIT_MS)
    page.locator("#music-folder-add").click()
    page.wait_for_function("() => document.body.innerText.includes('Added 1 track from')", timeout=WAIT_MS)
    page.locator("#music-folder textarea, #music-folder input").first.fill("/etc")
    page.locator("#music-folder-add").click()
    page.wait_for_function("() => document.body.innerText.includes('outside the music roots')", timeout=WAIT_MS)
    page.goto(base + "/")
    page.wait_for_selector("#query-video input[type=file]", state="attached", timeout=WAIT_MS)
    page.get_by_role("tab", name="Browse the model").click()
    page.wait_for_function("() => document.body.innerText.includes('in the test gallery')", timeout=WAIT_MS)
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / "demo-browse.png"), full_page=True)
