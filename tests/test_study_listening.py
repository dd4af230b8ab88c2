"""Real listening, server side: a vote sooner than ``min_listen_fraction`` of both soundtracks after
its trial was served is refused (through the service on SQLite and PostgreSQL, and through the
public API of a launched server), the same vote after the wait is stored; listening times are
stored and screened; one client cannot join without limit; the completion redirect."""

from __future__ import annotations

import dataclasses
import math
import time
from datetime import UTC

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from sqlalchemy import select

from study import service
from study.config import StudyConfig
from study.db import Database
from study.export import votes_csv
from study.join_limit import JoinLimiter
from study.models import Study, Trial, Vote
from study.service import Refused, TooSoon
from study.stats import screen_raters
from vmnet_core.errors import VmnetError
from vmnet_testkit.study_helpers import new_study, open_test_database, premux_clips
from vmnet_testkit.study_server import study_in_thread

FRACTION = 1.0  # with the 1.5-s test clips: a vote may come 3 s after its trial was served
LONG_CLIP_S = 60.0  # a study that says its clips last this long: a vote comes 2 minutes after serving
NO_EXTRAS = {"attention": {"count": 0}, "swapped_repeats": 0, "practice": False}


@pytest.fixture(scope="module")
def premuxed(tmp_path_factory):
    return premux_clips(tmp_path_factory.mktemp("clips"), check_kind=None)


def _needed_s(premuxed) -> float:
    return FRACTION * 2 * premuxed.durations[0]


def _joined(db, key=None, params=None, **kwargs) -> str:
    token = service.join(db, key, params or {}, **kwargs)
    service.consent(db, token)
    return token


def _vote_after_wait(vote, needed_s: float):
    """Send ``vote()`` until it is accepted, sleeping as each refusal says; returns (ack, refusals)."""
    refusals = []
    deadline = time.monotonic() + needed_s + 30  # a bound for a busy machine, not a timing
    while True:
        try:
            return vote(), refusals
        except (TooSoon, AppError) as exc:
            refusals.append(str(exc))
            assert time.monotonic() < deadline, refusals
            time.sleep(min(0.5, needed_s))


def test_a_vote_sooner_than_both_soundtracks_is_refused_and_the_same_vote_after_the_wait_is_stored(any_db, premuxed):
    new_study(any_db, premuxed, min_listen_fraction=FRACTION, **NO_EXTRAS)
    token = _joined(any_db)
    view = service.current_trial(any_db, token)
    with pytest.raises(TooSoon, match=r"^Please listen to both soundtracks before answering; .* in \d+ s\.$") as early:
        service.record_vote(any_db, token, view.trial_id, "A", listened_a_s=1.5, listened_b_s=1.5)
    assert 0 < early.value.wait_s <= _needed_s(premuxed)
    ack, _ = _vote_after_wait(lambda: service.record_vote(any_db, token, view.trial_id, "B", response_ms=3100,
                                                          listened_a_s=1.5, listened_b_s=1.25), _needed_s(premuxed))
    assert ack.choice == "B" and ack.next_trial is not None
    with any_db.read() as s:
        trial = s.get(Trial, view.trial_id)
        vote = s.scalar(select(Vote).where(Vote.trial_id == view.trial_id))
        served, stored = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (trial.served_at, vote.created_at))
        assert (stored - served).total_seconds() >= _needed_s(premuxed)
        assert s.get(Trial, ack.next_trial.trial_id).served_at is not None  # the ack served the next trial
    with pytest.raises(TooSoon):  # ... so its clock runs from the ack, and it is too soon again
        service.record_vote(any_db, token, ack.next_trial.trial_id, "A")
    row = service.vote_rows(any_db)[0]
    assert (row.listened_a_s, row.listened_b_s, row.duration_s) == (1.5, 1.25, premuxed.durations[0])
    assert row.served_at and "listened_a_s" in votes_csv(any_db, None).splitlines()[0]


def test_a_reload_does_not_restart_the_wait_and_a_trial_never_fetched_starts_it(tmp_path, premuxed):
    db = open_test_database("sqlite", tmp_path)
    new_study(db, premuxed, min_listen_fraction=FRACTION, **NO_EXTRAS)
    token = _joined(db)
    first = service.current_trial(db, token)
    with db.read() as s:
        served = s.get(Trial, first.trial_id).served_at
    service.current_trial(db, token)  # a reload
    with db.read() as s:
        assert s.get(Trial, first.trial_id).served_at == served
        second = s.scalars(select(Trial).where(Trial.assignment_id == s.get(Trial, first.trial_id).assignment_id,
                                               Trial.position == 1)).one()
    _vote_after_wait(lambda: service.record_vote(db, token, first.trial_id, "A"), _needed_s(premuxed))
    with db.write() as s:  # as if the ack that served trial 2 were lost: it has no serving time
        s.execute(Trial.__table__.update().where(Trial.id == second.id).values(served_at=None))
    with pytest.raises(TooSoon):
        service.record_vote(db, token, second.id, "A")
    with db.read() as s:
        assert s.get(Trial, second.id).served_at is not None  # refused, but its wait has started
    db.dispose()


def test_the_practice_trial_is_not_held_back_and_bad_listening_times_are_refused(tmp_path, premuxed):
    db = open_test_database("sqlite", tmp_path)
    new_study(db, premuxed, min_listen_fraction=1.0, attention={"count": 0}, swapped_repeats=0, practice=True)
    token = _joined(db)
    practice = service.current_trial(db, token)
    assert practice.practice
    for bad in (-1.0, math.nan, math.inf, "3", True):
        with pytest.raises(Refused, match="listening time of soundtrack A"):
            service.record_vote(db, token, practice.trial_id, "A", listened_a_s=bad)
    assert service.record_vote(db, token, practice.trial_id, "A").next_trial is not None
    db.dispose()


def _row(participant, kind="normal", listened=(1.5, 1.5), duration=1.5, response_ms=3000, position=0):
    return {"participant": participant, "kind": kind, "choice": "A", "winner": "x", "expected_choice": None,
            "repeat_of": None, "position": position, "listened_a_s": listened[0], "listened_b_s": listened[1],
            "duration_s": duration, "response_ms": response_ms}


def test_screening_excludes_raters_who_did_not_listen_or_answered_too_fast():
    rows = [_row(1, position=i) for i in range(4)]  # played everything
    rows += [_row(2, listened=(0.3, 0.4), position=i) for i in range(4)]  # 23% played
    rows += [_row(3, response_ms=400, position=i) for i in range(4)]  # median 400 ms
    rows += [_row(4, listened=(None, None), response_ms=None, position=i) for i in range(4)]  # nothing reported
    rows += [_row(5, listened=(9.0, 0.2), position=i) for i in range(4)]  # looping A does not make up for B
    screened = {s.participant: s for s in screen_raters(rows, 0.15, 0.0, min_listened_fraction=0.6,
                                                        min_response_ms=1000)}
    assert {p for p, s in screened.items() if s.excluded} == {2, 3, 5}
    assert screened[2].reason == "played 23% of the soundtracks (below 60%)"
    assert screened[3].reason == "median response time 400 ms (below 1000 ms)"
    off = screen_raters(rows, 0.15, 0.0)  # the old call: listening not screened
    assert not any(s.excluded for s in off)


def test_the_study_screening_uses_the_configured_listening_threshold(tmp_path, premuxed):
    db = open_test_database("sqlite", tmp_path)
    new_study(db, premuxed, screening={"min_listened_fraction": 0.9}, **NO_EXTRAS)
    token = _joined(db)
    while (view := service.current_trial(db, token)) is not None:
        service.record_vote(db, token, view.trial_id, "A", listened_a_s=0.5, listened_b_s=1.5)
    assert service.participant_rows(db)[0]["screening"] == "excluded"
    assert service.analyze(db, n_boot=10).raters_included == 0
    db.dispose()


def test_the_join_limiter_counts_joins_per_client_and_forgets_them_after_the_window():
    now = [0.0]
    limiter = JoinLimiter(clock=lambda: now[0])
    assert [limiter.take(1, "10.0.0.1", 2, 60.0) for _ in range(3)] == [0.0, 0.0, 60.0]
    assert limiter.take(1, "10.0.0.2", 2, 60.0) == 0.0  # another client
    assert limiter.take(2, "10.0.0.1", 2, 60.0) == 0.0  # another study
    assert limiter.take(1, "10.0.0.1", 0, 60.0) == 0.0  # no limit
    now[0] = 61.0
    assert limiter.take(1, "10.0.0.1", 2, 60.0) == 0.0


def test_the_completion_url_carries_the_code_once_the_rater_is_done(tmp_path, premuxed):
    db = open_test_database("sqlite", tmp_path)
    new_study(db, premuxed, completion_code="C0DE 1", completion_url="https://app.prolific.com/submissions/complete?cc={code}",
              **NO_EXTRAS)
    new_study(db, premuxed, "no-url", **NO_EXTRAS)
    token = _joined(db, _key(db, "study-one"))
    with pytest.raises(Refused, match="not finished"):
        service.completion_url(db, token)
    while (view := service.current_trial(db, token)) is not None:
        service.record_vote(db, token, view.trial_id, "A")
    assert service.completion_url(db, token) == "https://app.prolific.com/submissions/complete?cc=C0DE%201"
    other = _joined(db, _key(db, "no-url"))
    while (view := service.current_trial(db, other)) is not None:
        service.record_vote(db, other, view.trial_id, "A")
    assert service.completion_url(db, other) == ""
    for bad in ("javascript:alert(1)", "https://x.org/{PROLIFIC_PID}", "https://x.org/a b"):
        with pytest.raises(VmnetError, match="completion_url"):
            StudyConfig.from_dict({"name": "s", "completion_url": bad})
    db.dispose()


def _key(db: Database, name: str) -> str:
    with db.read() as s:
        return s.scalar(select(Study.public_key).where(Study.name == name))


# ------------------------------------------------------------------------- through a real server
def test_through_the_public_api_an_early_vote_is_refused_a_patient_one_stored_and_joins_are_limited(tmp_path, premuxed):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    db = Database(url)
    new_study(db, premuxed, "listen", min_listen_fraction=FRACTION, **NO_EXTRAS)
    new_study(db, dataclasses.replace(premuxed, durations=[LONG_CLIP_S] * len(premuxed.durations)), "long",
              min_listen_fraction=FRACTION, **NO_EXTRAS)
    new_study(db, premuxed, "joins", joins_per_client=2, **NO_EXTRAS)
    listen, long, joins = _key(db, "listen"), _key(db, "long"), _key(db, "joins")
    with study_in_thread(url, tmp_path / "work") as srv:
        client = Client(srv.study, verbose=False, download_files=False)
        token = client.predict("", {"study": long}, "", api_name="/consent")
        view = client.predict(token, api_name="/trial")
        with pytest.raises(AppError, match="Please listen to both soundtracks before answering"):
            client.predict(token, view["trial_id"], "A", None, True, True, 100, None, None, api_name="/vote")

        token = client.predict("", {"study": listen}, "", api_name="/consent")
        view = client.predict(token, api_name="/trial")
        ack, _ = _vote_after_wait(lambda: client.predict(token, view["trial_id"], "A", None, True, True, 3000, 1.5, 1.5,
                                                         api_name="/vote"), _needed_s(premuxed))
        assert ack["trial_id"] == view["trial_id"] and not ack["next"]["done"]

        first = client.predict("", {"study": joins}, "join-key-of-rater-one", api_name="/consent")
        client.predict("", {"study": joins}, "join-key-of-rater-two", api_name="/consent")
        with pytest.raises(AppError, match="Too many new sessions were started from your network"):
            client.predict("", {"study": joins}, "join-key-of-rater-three", api_name="/consent")
        assert client.predict("", {"study": joins}, "join-key-of-rater-one", api_name="/consent") == first
        # a client rotating among the IPv6 addresses of its /64 is one client; the next /64 is another
        subscriber = [Client(srv.study, verbose=False, download_files=False,
                             headers={"X-Forwarded-For": f"2001:db8:7:1::{n}"}) for n in (1, 2, 3)]
        for n, rotated in enumerate(subscriber[:2]):
            rotated.predict("", {"study": joins}, f"join-key-of-ipv6-rater-{n}", api_name="/consent")
        with pytest.raises(AppError, match="Too many new sessions were started from your network"):
            subscriber[2].predict("", {"study": joins}, "join-key-of-ipv6-rater-2", api_name="/consent")
        Client(srv.study, verbose=False, download_files=False, headers={"X-Forwarded-For": "2001:db8:7:2::1"}).predict(
            "", {"study": joins}, "join-key-of-the-next-network", api_name="/consent")
    with db.read() as s:
        trial = s.get(Trial, view["trial_id"])
        vote = s.scalar(select(Vote).where(Vote.trial_id == trial.id))
        served, stored = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (trial.served_at, vote.created_at))
        assert (stored - served).total_seconds() >= _needed_s(premuxed)
    db.dispose()
