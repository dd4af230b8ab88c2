"""A real browser (Playwright + Debian's chromium, headless) walks the rater's page: consent (and
decline), instructions, the practice trial on its own clip and the trials (listening to soundtrack A
and B in the one A/B player, switched by key), the answers, and the completion code; switching keeps
the playback position without a reload; seeking to the end unlocks nothing; the answer fits a
1366×768 screen; the admin logs in. Both pages are served behind
app.py's web guard (opaque file URLs, docs/security.md). Screenshots land in tmp_path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from study.db import Database
from study.models import Candidate, Participant, Stimulus, Vote
from vmnet_testkit.browser import chromium
from vmnet_testkit.ci import skip_or_fail
from vmnet_testkit.study_helpers import new_study, premux_clips
from vmnet_testkit.study_server import study_in_thread

TRIALS = 4  # 1 clip x 3 pairs + the practice trial
STEP_MS = 60_000


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study_browser")
    premuxed = premux_clips(folder, n=1, check_kind="")
    db_url = f"sqlite:///{folder / 'study.db'}"
    db = Database(db_url)
    new_study(db, premuxed, "browser-study", attention={"count": 0}, swapped_repeats=0,
              contact="Dr. Ada Researcher, ada@example.org")
    with study_in_thread(db_url, folder / "work", guarded=True) as srv:  # behind the guard, as app.py serves it
        srv.db, srv.folder = db, folder
        yield srv
    db.dispose()


PLAYER = "#study-player .vmp"
AUDIO = PLAYER + " audio[data-side={side}]"


def _player_ready(page) -> None:
    """Wait until the trial's player has both soundtracks' lengths."""
    page.locator(PLAYER + " .vmp-play").wait_for(timeout=STEP_MS)
    page.wait_for_function("[...document.querySelectorAll('#study-player audio')].every(a => a.readyState >= 1)",
                           timeout=STEP_MS)


def _report(page) -> dict:
    return page.evaluate("window.vmnetStudyPlayer.report()")


def _listen(page, side: str) -> None:
    """Switch to soundtrack ``side`` with its key and play until the page counts it as heard."""
    page.keyboard.press(side.lower())
    page.wait_for_function(f"document.querySelector('{AUDIO.format(side=side)}').muted === false", timeout=STEP_MS)
    if page.evaluate(f"document.querySelector('{AUDIO.format(side=side)}').paused"):
        page.locator(PLAYER + " .vmp-play").click()
    page.locator(f"{PLAYER} .vmp-heard.vmp-done[data-side={side}]").wait_for(timeout=STEP_MS)


def _listen_both(page) -> None:
    _player_ready(page)
    _listen(page, "A")
    _listen(page, "B")
    page.locator("#study-played").get_by_text("Both soundtracks heard").wait_for(timeout=STEP_MS)


def _media_names(page) -> set[str]:
    return set(page.evaluate("[...document.querySelectorAll('#study-player audio')]"
                             ".map(a => a.src.split('/').pop())"))


def _blind_words(db: Database) -> list[str]:
    words = {"ground_truth", "vmnet", "random", "browser-study"}
    with db.read() as s:
        for stimulus in s.scalars(select(Stimulus)):
            words |= {stimulus.name, Path(stimulus.source_path).name}
        for cand in s.scalars(select(Candidate)):
            words |= {cand.track_title, cand.track_id, Path(cand.track_path).name}
    return sorted(w for w in words if w)


def _open_trial(browser, served, tmp_path, viewport=(1366, 768)):
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    page.goto(served.study, wait_until="domcontentloaded")
    can_play = page.evaluate("document.createElement('video').canPlayType('video/mp4; codecs=\"avc1.42E01E, mp4a.40.2\"')")
    if not can_play:
        skip_or_fail("this chromium build cannot play H.264/AAC mp4")
    page.locator("#study-agree").click(timeout=STEP_MS)
    page.locator("#study-start").click(timeout=STEP_MS)
    _player_ready(page)
    return context, page


def test_a_rater_walks_consent_trials_and_gets_the_completion_code(browser, served, tmp_path):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.goto(served.study + "?PROLIFIC_PID=browser-rater", wait_until="domcontentloaded")
    can_play = page.evaluate("document.createElement('video').canPlayType('video/mp4; codecs=\"avc1.42E01E, mp4a.40.2\"')")
    if not can_play:
        skip_or_fail("this chromium build cannot play H.264/AAC mp4")

    page.locator("#study-agree").wait_for(timeout=STEP_MS)
    page.locator("#study-contact").get_by_text("Dr. Ada Researcher").wait_for(timeout=STEP_MS)
    page.screenshot(path=str(tmp_path / "consent.png"), full_page=True)
    page.locator("#study-agree").click(timeout=STEP_MS)
    page.locator("#study-start").click(timeout=STEP_MS)
    page.locator("#study-progress").get_by_text(f"Trial 1 of {TRIALS} · practice").wait_for(timeout=STEP_MS)
    html_seen = [page.content()]
    media_by_trial = []
    for number in range(1, TRIALS + 1):
        assert page.locator("#study-next").is_disabled()
        _listen_both(page)
        media_by_trial.append(_media_names(page))
        page.get_by_label("Soundtrack B fits better").check()
        if number == 2:
            page.get_by_label("4", exact=True).check()
            page.screenshot(path=str(tmp_path / "trial-answered.png"), full_page=False)
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
    # the practice trial plays a clip of its own: none of its files is one a scored trial plays
    assert all(media_by_trial[0].isdisjoint(scored) for scored in media_by_trial[1:])

    page.reload(wait_until="domcontentloaded")  # the token in BrowserState brings the code back
    page.locator("#study-code").get_by_text(rater.completion_code).wait_for(timeout=STEP_MS)
    html_seen.append(page.content())
    blob = "\n".join(html_seen + urls)
    assert any(re.search(r"/vm-[0-9a-f]{12}/(?:[0-9a-f]+/)?[0-9a-f]{32}\.mp4", u) for u in urls)  # opaque files played
    assert str(served.folder) not in blob  # nor where the study's media lie
    leaks = [w for w in _blind_words(served.db)
             if re.search(rf"(?<![A-Za-z0-9_]){re.escape(w)}(?![A-Za-z0-9_])", blob)]
    assert leaks == []
    context.close()


def test_switching_keeps_the_position_without_a_reload_by_button_and_key(browser, served, tmp_path):
    context, page = _open_trial(browser, served, tmp_path)
    page.evaluate(f"""() => {{ for (const el of document.querySelectorAll('{PLAYER} audio, {PLAYER} video'))
                              el.dataset.mark = 'first-load'; }}""")
    page.locator(PLAYER + " .vmp-play").click()
    page.wait_for_function(f"document.querySelector('{AUDIO.format(side='A')}').currentTime > 0.5", timeout=STEP_MS)
    page.keyboard.press("Space")  # pause
    page.wait_for_function(f"document.querySelector('{AUDIO.format(side='A')}').paused", timeout=STEP_MS)
    before = page.evaluate(f"document.querySelector('{AUDIO.format(side='A')}').currentTime")
    page.locator(PLAYER + " .vmp-side[data-side=B]").click()  # the button
    after = page.evaluate(f"""() => {{ const b = document.querySelector('{AUDIO.format(side='B')}');
        return {{t: b.currentTime, muted: b.muted, a_muted: document.querySelector('{AUDIO.format(side='A')}').muted,
                 pressed: document.querySelector('{PLAYER} .vmp-side[data-side=B]').getAttribute('aria-pressed')}}; }}""")
    assert abs(after["t"] - before) < 0.3 and not after["muted"] and after["a_muted"] and after["pressed"] == "true"
    page.keyboard.press("Space")  # play on, with soundtrack B, from that moment
    page.wait_for_function(f"!document.querySelector('{AUDIO.format(side='B')}').paused", timeout=STEP_MS)
    playing = page.evaluate(f"""() => [document.querySelector('{AUDIO.format(side='B')}').currentTime,
                                       document.querySelector('{AUDIO.format(side='A')}').paused]""")
    assert playing[0] >= before - 0.05 and playing[1] is True  # not back at 0:00; one soundtrack at a time
    page.wait_for_function(f"document.querySelector('{AUDIO.format(side='B')}').currentTime > 0.3", timeout=STEP_MS)
    page.keyboard.press("Space")
    page.wait_for_function(f"document.querySelector('{AUDIO.format(side='B')}').paused", timeout=STEP_MS)
    before = page.evaluate(f"document.querySelector('{AUDIO.format(side='B')}').currentTime")
    page.keyboard.press("a")  # the key
    after = page.evaluate(f"document.querySelector('{AUDIO.format(side='A')}').currentTime")
    assert abs(after - before) < 0.3
    assert page.evaluate(f"document.querySelector('{PLAYER} .vmp-side[data-side=A]').getAttribute('aria-pressed')") == "true"
    marks = page.evaluate(f"[...document.querySelectorAll('{PLAYER} audio, {PLAYER} video')].map(el => el.dataset.mark)")
    assert marks == ["first-load"] * 3  # the same elements: nothing was reloaded
    context.close()


def test_seeking_to_the_end_does_not_unlock_the_answer(browser, served, tmp_path):
    context, page = _open_trial(browser, served, tmp_path)
    page.locator(PLAYER + " .vmp-loop").uncheck()
    for side in ("A", "B"):
        page.keyboard.press(side.lower())
        page.evaluate(f"""() => {{ const seek = document.querySelector('{PLAYER} .vmp-seek');
            seek.value = '980'; seek.dispatchEvent(new Event('input', {{bubbles: true}})); }}""")
        page.locator(PLAYER + " .vmp-play").click()
        page.wait_for_function(f"document.querySelector('{AUDIO.format(side=side)}').ended", timeout=STEP_MS)
    report = _report(page)
    assert report["a"] < 0.3 * report["duration_a"] and report["b"] < 0.3 * report["duration_b"]
    page.wait_for_timeout(500)  # time for an unlock to arrive, were one sent
    assert page.locator("#study-next").is_disabled()
    assert page.locator("#study-played").get_by_text("Both soundtracks heard").count() == 0
    context.close()


def test_the_answer_and_save_fit_a_laptop_screen_and_the_clip_is_not_upscaled(browser, served, tmp_path):
    context, page = _open_trial(browser, served, tmp_path)
    _listen_both(page)
    page.get_by_label("Soundtrack A fits better").check()
    page.locator("#study-strength").wait_for(state="visible", timeout=STEP_MS)
    page.screenshot(path=str(tmp_path / "trial-1366x768.png"))
    assert page.evaluate("window.scrollY") == 0
    for element in ("#study-next", "#study-choice", "#study-strength", PLAYER + " .vmp-controls"):
        box = page.locator(element).bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 768, (element, box)
    size = page.evaluate(f"""() => {{ const v = document.querySelector('{PLAYER} video');
        return [v.clientWidth, v.clientHeight, v.videoWidth, v.videoHeight]; }}""")
    assert size[2] > 0 and size[0] <= size[2] and size[1] <= size[3]  # its own size at most
    context.close()


def test_the_strength_hides_with_no_preference(browser, served, tmp_path):
    context, page = _open_trial(browser, served, tmp_path)
    _listen_both(page)
    assert not page.locator("#study-strength").is_visible()
    page.get_by_label("Soundtrack B fits better").check()
    page.locator("#study-strength").wait_for(state="visible", timeout=STEP_MS)
    page.get_by_label("No preference").check()
    page.locator("#study-strength").wait_for(state="hidden", timeout=STEP_MS)
    context.close()


def test_decline_ends_the_session_and_shows_the_contact(browser, served, tmp_path):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.goto(served.study, wait_until="domcontentloaded")
    page.locator("#study-decline").click(timeout=STEP_MS)
    page.locator("#study-declined-text").get_by_text("You chose not to take part").wait_for(timeout=STEP_MS)
    assert "ada@example.org" in page.locator("#study-declined-text").inner_text()
    assert not page.locator("#study-agree").is_visible() and not page.locator("#study-start").is_visible()
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
