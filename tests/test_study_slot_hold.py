"""A slot whose rater has not finished within the study's hold is planned again for the next rater,
while that rater keeps their session and votes: joins that never answer cannot fill a
``close_when_full`` study for good (docs/security.md). On SQLite and on a real PostgreSQL server,
through the service and through the public API of a launched server."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from study import service
from study.config import StudyConfig
from study.db import Database, upgrade
from study.export import participants_csv
from study.models import Assignment, Participant, Study, Trial, Vote, utcnow
from study.slots import MIN_AUTO_HOLD_S, slot_hold_s
from vmnet_core.errors import VmnetError
from vmnet_testkit.study_helpers import new_study, open_test_database, premux_clips
from vmnet_testkit.study_server import study_in_thread

HOLD_S = 600.0


@pytest.fixture(scope="module")
def premuxed(tmp_path_factory):
    return premux_clips(tmp_path_factory.mktemp("clips"))


def _joined(db, key: str) -> str:
    token = service.join(db, key, {"PROLIFIC_PID": f"pid-{time.monotonic_ns()}"})
    service.consent(db, token)
    return token


def _assignment(db, token: str) -> Assignment:
    with db.read() as s:
        return s.scalar(select(Assignment).join(Participant, Assignment.participant_id == Participant.id)
                        .where(Participant.token == token))


def _trials(db, assignment_id: int) -> list[Trial]:
    with db.read() as s:
        return list(s.scalars(select(Trial).where(Trial.assignment_id == assignment_id).order_by(Trial.position)))


def _joined_long_ago(db, token: str, seconds: float) -> None:
    """Move ``token``'s join ``seconds`` into the past (a rater who joined then and went quiet)."""
    with db.write() as s:
        participant_id = s.scalar(select(Participant.id).where(Participant.token == token))
        s.execute(update(Assignment).where(Assignment.participant_id == participant_id)
                  .values(assigned_at=utcnow() - timedelta(seconds=seconds)))


def _answer_all(db, token: str) -> int:
    """Answer every remaining trial of ``token`` (the test studies have no listening wait); returns the votes."""
    votes = 0
    while (view := service.current_trial(db, token)) is not None:
        service.record_vote(db, token, view.trial_id, "A", strength=3, response_ms=1500, played_a=True, played_b=True)
        votes += 1
    return votes


def _key(db) -> str:
    with db.read() as s:
        return s.scalar(select(Study.public_key))


def test_a_slot_whose_rater_has_not_finished_within_the_hold_is_planned_again_and_the_rater_keeps_theirs(
        any_db, premuxed):
    new_study(any_db, premuxed, participants=2, close_when_full=True, slot_hold_s=HOLD_S)
    key = _key(any_db)
    quiet, busy = _joined(any_db, key), _joined(any_db, key)
    service.record_vote(any_db, quiet, service.current_trial(any_db, quiet).trial_id, "B", strength=2,
                        response_ms=900, played_a=True, played_b=True)
    with pytest.raises(service.Refused, match=r"full for now: .* offered again in about 10 minutes"):
        service.join(any_db, key)

    _joined_long_ago(any_db, quiet, HOLD_S - 60)
    with pytest.raises(service.Refused, match="offered again in about 1 minute"):
        service.join(any_db, key)
    _joined_long_ago(any_db, quiet, HOLD_S + 1)
    old = _assignment(any_db, quiet)
    newcomer = _joined(any_db, key)
    new = _assignment(any_db, newcomer)

    # the newcomer rates the same planned slot, on trials of their own, never served yet
    assert (new.slot, new.seed, new.plan) == (old.slot, old.seed, old.plan) and new.id != old.id
    assert new.released_at is None and _assignment(any_db, quiet).released_at is not None
    old_trials, new_trials = _trials(any_db, old.id), _trials(any_db, new.id)
    assert [(t.position, t.stimulus_id, t.candidate_a_id, t.candidate_b_id, t.kind) for t in new_trials] == \
        [(t.position, t.stimulus_id, t.candidate_a_id, t.candidate_b_id, t.kind) for t in old_trials]
    assert not {t.id for t in new_trials} & {t.id for t in old_trials}
    assert all(t.served_at is None for t in new_trials) and old_trials[1].served_at is not None
    with pytest.raises(service.Refused, match="full for now"):
        service.join(any_db, key)  # the busy rater's slot is still theirs

    # the quiet rater comes back and finishes, the newcomer too: every vote of both is kept
    n_trials = len(old_trials)
    assert _answer_all(any_db, quiet) == n_trials - 1 and _answer_all(any_db, newcomer) == n_trials
    assert service.completion_code(any_db, quiet) and service.completion_code(any_db, newcomer)
    with any_db.read() as s:
        counts = {token: s.scalar(select(func.count(Vote.id)).join(Participant, Vote.participant_id == Participant.id)
                                  .where(Participant.token == token)) for token in (quiet, newcomer, busy)}
    assert counts == {quiet: n_trials, newcomer: n_trials, busy: 0}

    progress = service.progress(any_db)
    assert (progress.planned_slots, progress.replanned_slots, progress.participants, progress.finished) == (2, 1, 3, 2)
    rows = {row["participant"]: row for row in service.participant_rows(any_db)}
    replanned = [row for row in rows.values() if row["slot_replanned_at"]]
    assert len(replanned) == 1 and replanned[0]["answers"] == n_trials and replanned[0]["slot"] == old.slot
    assert "slot_replanned_at" in participants_csv(any_db).splitlines()[0]


def test_a_finished_rater_keeps_their_slot_whatever_the_time_and_a_full_study_says_so(any_db, premuxed):
    new_study(any_db, premuxed, participants=1, close_when_full=True, slot_hold_s=HOLD_S)
    key = _key(any_db)
    done = _joined(any_db, key)
    _answer_all(any_db, done)
    _joined_long_ago(any_db, done, 10 * HOLD_S)
    with pytest.raises(service.Refused, match=r"^This study is full; thank you"):
        service.join(any_db, key)
    assert service.progress(any_db).replanned_slots == 0


def test_a_study_that_extends_its_plan_fills_a_released_slot_before_planning_a_new_one(any_db, premuxed):
    new_study(any_db, premuxed, participants=1, slot_hold_s=HOLD_S)
    key = _key(any_db)
    gone = _joined(any_db, key)
    assert _assignment(any_db, _joined(any_db, key)).slot == 1  # no slot released yet: the plan extends
    _joined_long_ago(any_db, gone, HOLD_S + 1)
    assert _assignment(any_db, _joined(any_db, key)).slot == 0
    assert _assignment(any_db, _joined(any_db, key)).slot == 2


def test_two_joins_at_once_never_plan_one_released_slot_twice(any_db, premuxed):
    new_study(any_db, premuxed, participants=1, close_when_full=True, slot_hold_s=HOLD_S)
    key = _key(any_db)
    _joined_long_ago(any_db, _joined(any_db, key), HOLD_S + 1)
    outcomes, start = [], threading.Barrier(4)

    def join() -> None:
        start.wait()
        try:
            outcomes.append(service.join(any_db, key))
        except service.Refused as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=join) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(isinstance(o, str) for o in outcomes) == 1, outcomes
    assert all("full for now" in str(o) for o in outcomes if not isinstance(o, str))
    with any_db.read() as s:
        assert s.scalar(select(func.count(Assignment.id)).where(Assignment.released_at.is_(None))) == 1
    with pytest.raises(IntegrityError):  # the database itself holds one active row per slot
        with any_db.write() as s:
            study_id = s.scalar(select(Study.id))
            s.add(Assignment(study_id=study_id, slot=0, seed=1, plan=[]))
            s.flush()


def test_the_hold_is_three_sessions_long_at_least_half_an_hour_or_as_configured(tmp_path, premuxed):
    db = Database(f"sqlite:///{tmp_path / 'study.db'}")
    new_study(db, premuxed, "auto")
    new_study(db, premuxed, "set", slot_hold_s=90)
    with db.read() as s:
        auto, set_ = (s.scalar(select(Study).where(Study.name == name)) for name in ("auto", "set"))
        assert slot_hold_s(auto) == MIN_AUTO_HOLD_S  # a session of 1.5-s clips takes a few minutes
        assert slot_hold_s(set_) == 90
    db.dispose()
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(VmnetError, match="slot_hold_s must be 0"):
            StudyConfig.from_dict({"name": "x", "slot_hold_s": bad})


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_migration_keeps_every_trial_and_vote_of_a_study_made_before_it(kind, tmp_path, premuxed):
    db = open_test_database(kind, tmp_path, migrate=False)
    upgrade(db.engine, "0003")
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO study (id, name, public_key, created_at, is_open, seed, media_dir, config, "
                          "design) VALUES (1, 'old', 'k', '2026-01-01', true, 0, '/m', '{}', '{}')"))
        conn.execute(text("INSERT INTO participant (id, study_id, token, created_at, url_params, screening) "
                          "VALUES (1, 1, 'old-token', '2026-01-01', '{}', 'included')"))
        conn.execute(text("INSERT INTO stimulus (id, study_id, ordinal, name, source_path, duration_s) "
                          "VALUES (1, 1, 0, 'clip', '/clip.mp4', 1.5)"))
        conn.execute(text("INSERT INTO candidate (id, study_id, stimulus_id, condition, track_id, track_title, "
                          "track_path, media_file) VALUES (1, 1, 1, 'a', 't', 't', '/t', 'm1'), "
                          "(2, 1, 1, 'b', 't', 't', '/t', 'm2')"))
        conn.execute(text("INSERT INTO assignment (id, study_id, slot, seed, plan, participant_id, assigned_at) "
                          "VALUES (1, 1, 0, 5, '[]', 1, '2026-01-01')"))
        conn.execute(text("INSERT INTO trial (id, study_id, assignment_id, position, stimulus_id, candidate_a_id, "
                          "candidate_b_id, kind) VALUES (1, 1, 1, 0, 1, 1, 2, 'normal')"))
        conn.execute(text("INSERT INTO vote (id, study_id, trial_id, participant_id, choice, played_a_to_end, "
                          "played_b_to_end, created_at) VALUES (1, 1, 1, 1, 'A', true, true, '2026-01-01')"))
    upgrade(db.engine)
    with db.engine.connect() as conn:
        counts = [conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() for table in ("assignment", "trial", "vote")]
        assert counts == [1, 1, 1]
        assert conn.execute(text("SELECT released_at FROM assignment")).scalar() is None
        if kind == "sqlite":  # foreign keys are enforced again after the table was rebuilt
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    with pytest.raises(IntegrityError):
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO trial (id, study_id, assignment_id, position, stimulus_id, candidate_a_id, "
                              "candidate_b_id, kind) VALUES (2, 1, 99, 0, 1, 1, 2, 'normal')"))
    db.dispose()


def test_joins_that_never_answer_hold_a_full_study_only_until_the_hold_runs_out(tmp_path, premuxed):
    """The attack the known limit described, against a launched server: a script joins a
    ``close_when_full`` study until it is full and never answers; an honest rater is told when a
    place frees up and gets one once the hold has passed."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    db = Database(url)
    hold_s = 4.0
    new_study(db, premuxed, participants=2, close_when_full=True, slot_hold_s=hold_s, joins_per_client=10)
    key = _key(db)
    with study_in_thread(url, tmp_path / "work") as srv:
        attacker = Client(srv.study, verbose=False, download_files=False)
        held = [attacker.predict("", {"study": key}, f"attackers-join-key-{n:04d}", api_name="/consent")
                for n in range(2)]
        honest = Client(srv.study, verbose=False, download_files=False,
                        headers={"X-Forwarded-For": "198.51.100.7"})
        with pytest.raises(AppError, match="full for now: a place held by a rater who has not finished is offered"):
            honest.predict("", {"study": key}, "the-honest-raters-key", api_name="/consent")
        deadline = time.monotonic() + hold_s + 30  # a bound for a busy machine, not a timing
        while True:
            try:
                token = honest.predict("", {"study": key}, "the-honest-raters-key", api_name="/consent")
                break
            except AppError as exc:
                assert "full for now" in str(exc) and time.monotonic() < deadline, exc
                time.sleep(1.0)
        view = honest.predict(token, api_name="/trial")
        assert view["trial_id"] and token not in held
        ack = honest.predict(token, view["trial_id"], "A", None, True, True, 2000, 1.5, 1.5, api_name="/vote")
        assert ack["trial_id"] == view["trial_id"]
    with db.read() as s:
        released = s.scalar(select(func.count(Assignment.id)).where(Assignment.released_at.is_not(None)))
    assert released == 1
    db.dispose()
