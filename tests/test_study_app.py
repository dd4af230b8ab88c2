"""The study pages end to end through a real server: gradio_client raters, resume after a reload,
double submits, a failed save, the admin behind its login, and a blindness scan of everything a
rater receives. The last test starts the real ``python app.py`` on the tiny starter bundle."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from gradio_client import Client
from sqlalchemy import func, select

from app import JANITOR_MAX_PERIOD_S
from study.db import Database
from study.design import CHECK_CONDITION
from study.models import Candidate, Participant, Stimulus, Study, Vote
from vmnet_testkit.study_helpers import premux_clips
from vmnet_testkit.study_server import ADMIN_PASSWORD, PageRater, PageSession, app_subprocess, study_in_thread

STUDY_NAME = "hidden-admin-study-name"
COMPLETION_URL = "https://app.prolific.com/submissions/complete?cc={code}"
TRIALS = 9  # 2 clips x 3 pairs + 1 attention check + 1 swapped repeat + 1 practice


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from vmnet_testkit.study_helpers import new_study

    folder = tmp_path_factory.mktemp("study_app")
    premuxed = premux_clips(folder, n=2)
    db_url = f"sqlite:///{folder / 'study.db'}"
    db = Database(db_url)
    new_study(db, premuxed, STUDY_NAME, contact="Dr. Ada Researcher, ada@example.org", completion_url=COMPLETION_URL)
    with study_in_thread(db_url, folder / "work", guarded=True) as srv:  # as app.py serves it: folders masked
        srv.db = db
        srv.premuxed = premuxed
        yield srv
    db.dispose()


def _client(srv) -> Client:
    return Client(srv.study, verbose=False, download_files=False)


def _answer_all(api, token: str, choice: str = "A") -> dict:
    """Answer every remaining trial through the public API; returns the last ack."""
    ack = None
    while not (view := api(token))["done"]:
        ack = api.vote(token, view["trial_id"], choice)
    return ack


class ApiRater:
    """A scripted rater using gradio_client against /study's public API."""

    def __init__(self, client: Client):
        self.client = client

    def __call__(self, token: str) -> dict:
        return self.client.predict(token, api_name="/trial")

    def consent(self, token: str = "", params: dict | None = None, join_key: str = "") -> str:
        return self.client.predict(token, params or {}, join_key, api_name="/consent")

    def vote(self, token: str, trial_id: int, choice: str, strength: int | None = None) -> dict:
        return self.client.predict(token, trial_id, choice, strength, True, True, 1200, None, None, api_name="/vote")

    def code(self, token: str) -> str:
        return self.client.predict(token, api_name="/completion_code")


def _absolute(srv, url: str) -> str:
    """A file URL from a payload, made absolute (Gradio sends absolute URLs for mounted apps)."""
    return url if url.startswith("http") else srv.url + url


def _participant(db: Database, token: str) -> Participant:
    with db.read() as s:
        return s.scalar(select(Participant).where(Participant.token == token))


def _vote_count(db: Database, token: str) -> int:
    with db.read() as s:
        return s.scalar(select(func.count(Vote.id)).join(Participant, Vote.participant_id == Participant.id)
                        .where(Participant.token == token))


# ------------------------------------------------------------------------------------- raters
def test_raters_complete_sessions_and_get_their_code_only_at_the_end(served):
    rater = ApiRater(_client(served))
    assert set(rater.client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == {
        "/consent", "/trial", "/vote", "/completion_code", "/completion_url", "/texts"}
    tokens = [rater.consent("", {"PROLIFIC_PID": f"pid-{i}", "study": ""}) for i in range(3)]
    assert len(set(tokens)) == 3
    with pytest.raises(Exception, match="not finished yet"):
        rater.code(tokens[0])

    def session(token: str, choice: str) -> None:
        first = rater(token)
        assert first["practice"] is True and first["number"] == 1 and first["total"] == TRIALS
        _answer_all(rater, token, choice)

    threads = [threading.Thread(target=session, args=(t, c)) for t, c in zip(tokens, "AB", strict=False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    session(tokens[2], "none")
    for i, token in enumerate(tokens):
        stored = _participant(served.db, token)
        assert stored.url_params["PROLIFIC_PID"] == f"pid-{i}"
        assert stored.finished_at is not None and _vote_count(served.db, token) == TRIALS
        assert rater.code(token) == stored.completion_code
        assert rater.client.predict(token, api_name="/completion_url") == COMPLETION_URL.format(
            code=quote(stored.completion_code, safe=""))
        assert rater(token) == {"done": True}


def test_a_reload_resumes_at_the_first_unanswered_trial(served):
    first_tab = ApiRater(_client(served))
    token = first_tab.consent()
    for _ in range(3):
        view = first_tab(token)
        first_tab.vote(token, view["trial_id"], "B", 4)
    reloaded = ApiRater(_client(served))  # a new session that only keeps the token
    assert reloaded(token)["number"] == 4 and reloaded(token)["answered"] == 3
    page = PageSession(served.study)  # the page itself, loaded with the token from BrowserState
    load = dict(zip(page.outputs_of(None, "load"), page.call(None, "load", [token, None]), strict=True))
    assert "Trial 4 of 9" in _html_with(load, "study-progress")
    assert _visible(load, page.component_id("study-trial")) is True
    assert _visible(load, page.component_id("study-consent")) is False


def _html_with(outputs: dict, marker: str) -> str:
    return next(v for v in outputs.values() if isinstance(v, str) and marker in v)


def _visible(outputs: dict, component_id: int):
    value = outputs[component_id]
    return value.get("visible") if isinstance(value, dict) else None


def test_a_double_submit_stores_one_vote(served):
    rater = ApiRater(_client(served))
    token = rater.consent()
    view = rater(token)
    acks: list[dict] = []
    threads = [threading.Thread(target=lambda c=c: acks.append(rater.vote(token, view["trial_id"], c)))
               for c in ("A", "A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(acks) == 3 and len({a["choice"] for a in acks}) == 1  # every submit sees the first stored answer
    assert _vote_count(served.db, token) == 1
    again = rater.vote(token, view["trial_id"], "none")
    assert again == acks[0] and _vote_count(served.db, token) == 1
    assert rater(token)["number"] == 2


def _without_files(view: dict) -> dict:
    """A trial payload with each video reduced to its opaque name (cache URLs may differ per call)."""
    return {k: (v["orig_name"] if k.startswith("video_") else v) for k, v in view.items()}


def test_each_vote_answer_names_the_next_trial_as_trial_would(served):
    rater = ApiRater(_client(served))
    token = rater.consent()
    view, numbers = rater(token), []
    while not view["done"]:
        ack = rater.vote(token, view["trial_id"], "B")
        numbers.append(ack["number"])
        assert _without_files(ack["next"]) == _without_files(rater(token))
        if not ack["next"]["done"]:
            assert ack["next"]["video_a"]["url"] and ack["next"]["video_a"]["orig_name"].endswith(".mp4")
            assert httpx.get(_absolute(served, ack["next"]["video_b"]["url"])).status_code == 200
        view = ack["next"]  # a client needs no /trial call between votes
    assert numbers == list(range(1, TRIALS + 1)) and ack["finished"] is True
    assert _vote_count(served.db, token) == TRIALS and rater.code(token) == _participant(served.db, token).completion_code
    resubmit = rater.vote(token, ack["trial_id"], "A")  # the last trial again: the same ack, still done
    assert resubmit["choice"] == "B" and resubmit["next"] == {"done": True}


def test_a_rater_cannot_answer_another_raters_trial(served):
    rater = ApiRater(_client(served))
    mine, theirs = rater.consent(), rater.consent()
    with pytest.raises(Exception, match="not part of your session"):
        rater.vote(mine, rater(theirs)["trial_id"], "A")
    with pytest.raises(Exception, match="not known"):
        rater("not-a-token")
    assert _vote_count(served.db, mine) == _vote_count(served.db, theirs) == 0


def test_a_retried_consent_with_the_same_join_key_returns_the_same_participant(served):
    rater = ApiRater(_client(served))
    key, other = "retry-key-" + "a" * 16, "retry-key-" + "b" * 16
    first = rater.consent("", {"PROLIFIC_PID": "retrying"}, key)
    again = rater.consent("", {"PROLIFIC_PID": "retrying"}, key)  # the first answer was "lost"
    assert again == first and rater.consent("", {}, other) != first
    with served.db.read() as s:
        assert s.scalar(select(func.count(Participant.id)).where(Participant.join_key == key)) == 1
    with pytest.raises(Exception, match="join key must be"):
        rater.consent("", {}, "short")


# ------------------------------------------------------------------------- the page's handlers
def test_the_page_walks_consent_trials_and_code_and_survives_a_failed_save(served):
    rater = PageRater(PageSession(served.study, httpx.Client(timeout=60, params={"PROLIFIC_PID": "page-rater"})))
    page = rater.page
    first = rater.load()
    assert _visible(first, page.component_id("study-consent")) is True
    rater.agree()
    assert _participant(served.db, rater.token).url_params["PROLIFIC_PID"] == "page-rater"
    out = rater.start()
    assert "Trial 1 of 9 · practice" in _html_with(out, "study-progress")
    assert "play both" in rater.notice(rater.save("A")).lower()  # locked until both were played
    ended = rater.play_both()
    next_btn = page.component_id("study-next")
    assert ended[next_btn]["interactive"] is True
    assert "choose" in rater.notice(rater.save(None)).lower()
    out = rater.save("B", 5)
    assert "Trial 2 of 9" in _html_with(out, "study-progress")
    rater.save("B", 5)  # a resubmit of the answered trial: the page stays, nothing new is stored
    assert _vote_count(served.db, rater.token) == 1
    for _ in range(TRIALS - 2):
        rater.play_both()
        out = rater.save("A", 2)
    assert "Trial 9 of 9" in _html_with(out, "study-progress")
    rater.play_both()
    db_file = served.db.engine.url.database
    with sqlite3.connect(db_file) as conn:  # the database stops confirming writes
        conn.execute("ALTER TABLE vote RENAME TO vote_away")
    try:
        failed = rater.save("none")
    finally:
        with sqlite3.connect(db_file) as conn:
            conn.execute("ALTER TABLE vote_away RENAME TO vote")
    assert rater.notice(failed) == "**Saving failed — please try again.**"
    assert not any("completion code" in str(v) for v in failed.values())
    assert failed[next_btn]["interactive"] is True  # the trial stays, the rater can retry
    done = rater.save("none")
    code = _participant(served.db, rater.token).completion_code
    assert code and code in _html_with(done, "completion code")
    assert COMPLETION_URL.format(code=quote(code, safe="")) in _html_with(done, "completion code")  # back to the platform
    assert _vote_count(served.db, rater.token) == TRIALS
    reload = PageRater(PageSession(served.study))
    reload.token = rater.token
    assert code in _html_with(reload.load(), "completion code")  # a reload after the end shows the code again


def test_the_answer_unlocks_only_when_both_soundtracks_were_heard_long_enough(served):
    rater = PageRater(PageSession(served.study))
    rater.load()
    rater.agree()
    rater.start()
    next_btn, played = rater.page.component_id("study-next"), rater.page.component_id("study-played")
    short = rater.play_both(heard_s=8.0, duration_s=10.0)  # 80 % of each: not enough
    assert short[next_btn].get("interactive") is None and "Both soundtracks heard" not in str(short[played])
    assert "play both" in rater.notice(rater.save("A")).lower()
    real_trial, rater.trial_id = rater.trial_id, rater.trial_id + 10_000  # a report about another trial
    assert rater.play_both()[next_btn].get("interactive") is None
    assert "play both" in rater.notice(rater.save("A")).lower()
    rater.trial_id = real_trial
    heard = rater.play_both(heard_s=9.0, duration_s=10.0)  # 90 %: unlocked
    assert heard[next_btn]["interactive"] is True and "Both soundtracks heard" in str(heard[played])
    assert "Trial 2 of" in _html_with(rater.save("A"), "study-progress")
    assert _vote_count(served.db, rater.token) == 1


def test_the_strength_goes_only_with_a_preference_and_a_tie_with_one_is_refused(served):
    rater = PageRater(PageSession(served.study))
    rater.load()
    rater.agree()
    rater.start()
    strength = rater.page.component_id("study-strength")
    assert rater.choose("B")[strength]["visible"] is True
    hidden = rater.choose("none")[strength]
    assert hidden["visible"] is False and hidden["value"] is None
    rater.play_both()
    rater.save("none", 4)  # a stale strength from the page is dropped with no preference
    with served.db.read() as s:
        vote = s.scalar(select(Vote).join(Participant).where(Participant.token == rater.token))
    assert (vote.choice, vote.strength) == ("none", None)
    api = ApiRater(_client(served))
    token = api.consent()
    view = api(token)
    with pytest.raises(Exception, match="strength goes with a preference for A or B"):
        api.vote(token, view["trial_id"], "none", 3)
    assert api.vote(token, view["trial_id"], "B", 3)["choice"] == "B"


def test_decline_ends_the_session_with_the_contact_and_stores_nothing(served):
    with served.db.read() as s:
        before = s.scalar(select(func.count(Participant.id)))
    rater = PageRater(PageSession(served.study))
    shown = rater.load()
    assert "Dr. Ada Researcher" in str(shown[rater.page.component_id("study-contact")])
    consent = str(shown)
    assert re.search(r"It takes about \d+ minutes \(the clips alone play for about \d+ minutes\)", consent)
    out = rater.decline()
    page = rater.page
    assert _visible(out, page.component_id("study-declined")) is True
    assert _visible(out, page.component_id("study-consent")) is False
    text = str(out[page.component_id("study-declined-text")])
    assert "You chose not to take part" in text and "ada@example.org" in text
    with served.db.read() as s:
        assert s.scalar(select(func.count(Participant.id))) == before


def test_a_second_agree_on_the_page_joins_as_the_same_participant(served):
    rater = PageRater(PageSession(served.study))
    rater.load()
    assert rater.join_key  # the first visit makes the browser's join key
    rater.agree()
    first, rater.token = rater.token, None  # the answer to the first click never reached the browser
    rater.agree()
    assert rater.token == first
    other = PageRater(PageSession(served.study))
    other.load()
    other.agree()
    assert other.join_key != rater.join_key and other.token != first


# ------------------------------------------------------------------------------------ admin
def test_the_admin_refuses_anonymous_callers_and_serves_the_logged_in_admin(served):
    anonymous = httpx.Client(timeout=30)
    for path in ("config", "gradio_api/info", "gradio_api/openapi.json"):
        assert anonymous.get(served.admin + path).status_code == 401, path
    joined = anonymous.post(served.admin + "gradio_api/queue/join",
                            json={"data": [STUDY_NAME], "fn_index": 0, "session_hash": "x1", "trigger_id": None})
    assert joined.status_code == 401
    export = anonymous.post(served.admin + "gradio_api/call/export", json={"data": [STUDY_NAME]})
    assert export.status_code in (401, 404)  # 404: the web guard hides the route
    with pytest.raises(Exception):  # noqa: B017 - gradio_client has no single error type for this
        Client(served.admin, verbose=False)
    study_api = _client(served).view_api(print_info=False, return_format="dict")
    assert not {"/export", "/analyze", "/refresh", "/set_open"} & set(study_api["named_endpoints"])

    # a rater whose URL parameter looks like a spreadsheet formula
    rater = ApiRater(_client(served))
    token = rater.consent("", {"PROLIFIC_PID": "=HYPERLINK(\"http://x\")"})
    _answer_all(rater, token)

    admin = httpx.Client(timeout=120)
    login = admin.post(served.admin + "login/", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    page = PageSession(served.admin, admin)
    refreshed = dict(zip(page.outputs_of("admin-refresh", "click"),
                         page.call("admin-refresh", "click", [None]), strict=True))
    progress = refreshed[page.component_id("admin-progress")]
    assert STUDY_NAME in progress and "analysable votes" in progress
    files = page.call("admin-export", "click", [STUDY_NAME])
    votes_url, people_url = files[0]["url"], files[1]["url"]
    assert anonymous.get(_absolute(served, votes_url)).status_code == 401  # the admin's files need the login
    people = list(csv.DictReader(io.StringIO(admin.get(_absolute(served, people_url)).text)))
    formula = next(r for r in people if r.get("url_PROLIFIC_PID", "").startswith("'="))
    assert formula["answers"] == str(TRIALS)
    votes = list(csv.DictReader(io.StringIO(admin.get(_absolute(served, votes_url)).text)))
    assert votes and {"ground_truth", "vmnet", "random", CHECK_CONDITION} >= {v["condition_a"] for v in votes}
    plot, report, notice = page.call("admin-analyze", "click", [STUDY_NAME])
    assert plot["url"].endswith(".png") and "win rate" in report and not notice
    assert admin.get(_absolute(served, plot["url"])).content[:4] == b"\x89PNG"
    closed = page.call("admin-close", "click", [STUDY_NAME])
    assert "closed to new raters" in closed[0]
    with pytest.raises(Exception, match="no study is open"):
        rater.consent()
    assert "open to new raters" in page.call("admin-open", "click", [STUDY_NAME])[0]
    assert rater.consent()


# -------------------------------------------------------------------------------- blindness
def test_the_rater_and_admin_pages_share_the_apps_one_database(served):
    """mount_study opens one Database: every query of both pages runs on its engine (seen by a
    SQLAlchemy event listener), so SQLite writes of both pages queue on its one writer lock."""
    from sqlalchemy import event

    db = served.mounted.db
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        ApiRater(_client(served)).consent("", {"PROLIFIC_PID": "one-database"})
        assert any(q.startswith("INSERT INTO participant") for q in seen), seen
        seen.clear()
        admin = httpx.Client(timeout=120)
        assert admin.post(served.admin + "login/", data={"username": "admin", "password": ADMIN_PASSWORD}).is_success
        page = PageSession(served.admin, admin)
        page.call("admin-refresh", "click", [None])  # fills the study picker
        page.call("admin-close", "click", [STUDY_NAME])
        assert any(q.startswith("UPDATE study SET is_open") for q in seen), seen
        page.call("admin-open", "click", [STUDY_NAME])
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def _secrets(served) -> list[str]:
    """Everything a rater must never see: conditions, clip and track names, titles, source files."""
    words = {"ground_truth", "vmnet", "random", "cca", CHECK_CONDITION, STUDY_NAME}
    with served.db.read() as s:
        for stimulus in s.scalars(select(Stimulus)):
            words |= {stimulus.name, stimulus.source_path, Path(stimulus.source_path).name}
        for cand in s.scalars(select(Candidate)):
            words |= {cand.condition, cand.track_id, cand.track_title}
            if cand.track_path:
                words |= {cand.track_path, Path(cand.track_path).name}
        for study in s.scalars(select(Study)):
            words |= {study.name, study.media_dir}
    return sorted(w for w in words if w)


def test_nothing_a_rater_receives_names_a_condition_track_or_source(served):
    http = httpx.Client(timeout=60)
    page = PageSession(served.study, http)
    received = [http.get(served.study).text, http.get(served.study + "config").text,
                http.get(served.study + "gradio_api/info").text]
    rater = PageRater(page)
    rater.load()
    rater.agree()
    rater.start()
    rater.play_both()
    rater.save("A")
    token = rater.token
    page.api("texts", "")
    while not (view := page.api("trial", token))["done"]:
        media = [view["video_a"], view["video_b"]]
        page.api("vote", token, view["trial_id"], "B", None, True, True, 900, None, None)
    page.api("completion_code", token)
    for video in media:
        assert re.fullmatch(r"[0-9a-f]{32}\.mp4", video["orig_name"])
        fetched = http.get(_absolute(served, video["url"]))
        assert fetched.status_code == 200 and fetched.headers["content-type"] == "video/mp4"
        received.append(fetched.headers.get("content-disposition", "") + video["url"])
    received += page.received
    blob = "\n".join(received)
    assert "video_a" in blob and ".mp4" in blob  # the scan did see the trial payloads
    leaks = [w for w in _secrets(served) if re.search(rf"(?<![A-Za-z0-9_]){re.escape(w)}(?![A-Za-z0-9_])", blob)]
    assert leaks == []


# ------------------------------------------------------------------------------ the real app
def test_the_real_app_serves_a_working_default_study(tiny_bundle, tmp_path):
    from study.pages import prepare_default_study
    from study.service import list_studies

    db_url = f"sqlite:///{tmp_path / 'app-study.db'}"
    with app_subprocess(tiny_bundle, db_url, tmp_path / "cache") as srv:
        http = httpx.Client(timeout=60)
        assert http.get(srv.study).status_code == 200
        assert http.get(srv.admin + "config").status_code == 401
        page = PageSession(srv.study, http)
        token = page.api("consent", "", {"PROLIFIC_PID": "app-rater"}, "app-rater-join-key-1")
        assert page.api("consent", "", {"PROLIFIC_PID": "app-rater"}, "app-rater-join-key-1") == token
        view = page.api("trial", token)
        assert view["practice"] and view["total"] >= 4
        assert page.api("vote", token, view["trial_id"], "A", None, True, True, 500, None, None)["number"] == 1
        # the stimuli carry one fixed date (2000-01-01, for blinding) and Gradio's copy keeps it: the
        # upload janitor's next sweep must not take the copy for 26 years old
        time.sleep(JANITOR_MAX_PERIOD_S + 1)
        assert http.get(_absolute(srv, view["video_b"]["url"])).status_code == 200
    db = Database(db_url)
    try:
        assert list_studies(db) == ["default-study"]
        again = prepare_default_study(db, tiny_bundle, tmp_path / "cache" / "work" / "study")
        assert list_studies(db) == ["default-study"] and len(again) == 1
        assert len(list(again[0].glob("*.mp4"))) >= 6
    finally:
        db.dispose()
