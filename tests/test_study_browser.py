"""A real browser (Playwright + Debian's chromium, headless) walks the rater's page: consent,
instructions, the practice trial and the trials (playing soundtrack A and B to the end, one player
at a time), the answers, and the completion code; the admin logs in. Both pages are served behind
app.py's web guard (opaque file URLs, docs/security.md). Screenshots land in tmp_path."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from study.db import Database
from study.models import Candidate, Participant, Stimulus, Vote
from vmnet_testkit.ci import skip_or_fail
from vmnet_testkit.study_helpers import new_study, premux_clips
from vmnet_testkit.study_server import study_in_thread

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TRIALS = 4  # 1 clip x 3 pairs + the practice trial
STEP_MS = 60_000


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        skip_or_fail("chromium is not installed at /usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright Python package is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study_browser")
    premuxed = premux_clips(folder, n=1, check_kind="")
    db_url = f"sqlite:///{folder / 'study.db'}"
    db = Database(db_url)
    new_study(db, premuxed, "browser-study", attention={"count": 0}, swapped_repeats=0)
    with study_in_thread(db_url, folder / "work", guarded=True) as srv:  # behind the guard, as app.py serves it
        srv.db, srv.folder = db, folder
        yield srv
    db.dispose()


def _start(page, side: str, rate: float = 4.0) -> None:
    """Start the player of ``side`` (muted, at ``rate`` times normal speed)."""
    video = page.locator(f"#study-player-{side.lower()} video")
    video.wait_for(state="visible", timeout=STEP_MS)
    page.wait_for_function(f"document.querySelector('#study-player-{side.lower()} video').readyState >= 1",
                           timeout=STEP_MS)
    video.evaluate(f"v => {{ v.muted = true; v.playbackRate = {rate}; return v.play(); }}")


def _play_to_end(page, side: str) -> None:
    """Play the player of ``side`` to its end and wait until the page has counted it."""
    _start(page, side)
    page.locator("#study-played").get_by_text(re.compile(f"Soundtrack {side} played|Both soundtracks played")) \
        .wait_for(timeout=STEP_MS)


def _blind_words(db: Database) -> list[str]:
    words = {"ground_truth", "vmnet", "random", "browser-study"}
    with db.read() as s:
        for stimulus in s.scalars(select(Stimulus)):
            words |= {stimulus.name, Path(stimulus.source_path).name}
        for cand in s.scalars(select(Candidate)):
            words |= {cand.track_title, cand.track_id, Path(cand.track_path).name}
    return sorted(w for w in words if w)


def test_a_rater_walks_consent_trials_and_gets_the_completion_code(browser, served, tmp_path):
    context = browser.new_context(viewport={"width": 1100, "height": 1300})
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.goto(served.study + "?PROLIFIC_PID=browser-rater", wait_until="domcontentloaded")
    can_play = page.evaluate("document.createElement('video').canPlayType('video/mp4; codecs=\"avc1.42E01E, mp4a.40.2\"')")
    if not can_play:
        skip_or_fail("this chromium build cannot play H.264/AAC mp4")

    page.locator("#study-agree").wait_for(timeout=STEP_MS)
    page.screenshot(path=str(tmp_path / "consent.png"), full_page=True)
    page.locator("#study-agree").click(timeout=STEP_MS)
    page.locator("#study-start").click(timeout=STEP_MS)
    page.locator("#study-progress").get_by_text(f"Trial 1 of {TRIALS} · practice").wait_for(timeout=STEP_MS)
    page.screenshot(path=str(tmp_path / "trial-practice.png"), full_page=True)
    html_seen = [page.content()]
    for number in range(1, TRIALS + 1):
        assert page.locator("#study-next").is_disabled()
        if number == 1:  # switching sides mid-play stops the first player: one soundtrack at a time
            _start(page, "A", rate=0.25)
            page.wait_for_function("!document.querySelector('#study-player-a video').paused", timeout=STEP_MS)
            page.locator("#study-side-b").click()
            page.locator("#study-player-b video").wait_for(state="visible", timeout=STEP_MS)
            assert page.evaluate("[...document.querySelectorAll('#study-trial video')].filter(v => !v.paused).length") == 0
            page.locator("#study-side-a").click()
            assert page.locator("#study-next").is_disabled()
        _play_to_end(page, "A")
        page.locator("#study-side-b").click()
        page.locator("#study-player-b video").wait_for(state="visible", timeout=STEP_MS)
        assert page.locator("#study-player-a video").count() == 0 or not page.locator("#study-player-a").is_visible()
        _play_to_end(page, "B")
        page.locator("#study-played").get_by_text("Both soundtracks played").wait_for(timeout=STEP_MS)
        page.get_by_label("Soundtrack B fits better").check()
        if number == 2:
            page.get_by_label("4", exact=True).check()
            page.screenshot(path=str(tmp_path / "trial-answered.png"), full_page=True)
        html_seen.append(page.content())
        page.locator("#study-next").click()
        if number < TRIALS:
            page.locator("#study-progress").get_by_text(f"Trial {number + 1} of {TRIALS}").wait_for(timeout=STEP_MS)

    page.locator("#study-code").get_by_text("completion code").wait_for(timeout=STEP_MS)
    page.wait_for_function(  # let the markdown's fade-in finish before the screenshot
        "getComputedStyle(document.querySelector('#study-code [data-testid=markdown-wrapper]')).opacity === '1'",
        timeout=STEP_MS)
    page.screenshot(path=str(tmp_path / "completion-code.png"), full_page=True)
    with served.db.read() as s:
        rater = s.scalar(select(Participant).where(Participant.url_params["PROLIFIC_PID"].as_string() == "browser-rater"))
        votes = s.scalars(select(Vote).where(Vote.participant_id == rater.id).order_by(Vote.trial_id)).all()
    assert rater is not None and rater.finished_at is not None
    assert [v.choice for v in votes] == ["B"] * TRIALS and [v.strength for v in votes] == [None, 4, None, None]
    assert all(v.played_a_to_end and v.played_b_to_end for v in votes)
    assert rater.completion_code in page.locator("#study-code").inner_text()

    page.reload(wait_until="domcontentloaded")  # the token in BrowserState brings the code back
    page.locator("#study-code").get_by_text(rater.completion_code).wait_for(timeout=STEP_MS)
    html_seen.append(page.content())
    blob = "\n".join(html_seen + urls)
    assert any(re.search(r"/vm-[0-9a-f]{12}/[0-9a-f]+/[0-9a-f]{32}\.mp4", u) for u in urls)  # opaque files played
    assert str(served.folder) not in blob  # nor where the study's media lie
    leaks = [w for w in _blind_words(served.db)
             if re.search(rf"(?<![A-Za-z0-9_]){re.escape(w)}(?![A-Za-z0-9_])", blob)]
    assert leaks == []
    context.close()


def test_the_admin_logs_in_and_sees_progress_analysis_and_downloads(browser, served, tmp_path):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1200, "height": 1400})
    page = context.new_page()
    page.goto(served.admin, wait_until="domcontentloaded")
    page.get_by_label("username").fill("admin", timeout=STEP_MS)
    page.get_by_label("password").fill(served.password)
    page.get_by_role("button", name="Login").click()
    page.locator("#admin-progress").get_by_text("browser-study").wait_for(timeout=STEP_MS)
    page.locator("#admin-analyze").click()
    expect(page.locator("#admin-report")).to_contain_text("win rate", timeout=STEP_MS)
    page.locator("img[src*='analysis.png']").wait_for(timeout=STEP_MS)
    page.locator("#admin-export").click()
    page.get_by_label("browser-study-votes.csv").wait_for(timeout=STEP_MS)
    page.get_by_label("browser-study-participants.csv").wait_for(timeout=STEP_MS)
    page.screenshot(path=str(tmp_path / "admin.png"), full_page=True)
    context.close()
