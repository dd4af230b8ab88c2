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


def _gone_quiet(db, tokens: list[str]) -> None:
    """The raters of ``tokens`` joined a hold and a second ago (their slots are due to be planned again)."""
    for token in tokens:
        _joined_long_ago(db, token, HOLD_S + 1)


def test_a_rater_told_the_study_is_full_may_try_again_without_spending_their_joins(any_db, tmp_path, premuxed):
    """A squatter fills a ``close_when_full`` study; an honest rater, told a place frees up in N minutes,
    tries again and again. Each refused try used to count as a join: once the place was free the
    honest rater was locked out for the window ("Too many new sessions ...") and the squatter, who
    joined once at the right moment, took it again. Only joins that start a participant count."""
    new_study(any_db, premuxed, participants=1, close_when_full=True, slot_hold_s=HOLD_S, joins_per_client=2,
              joins_window_s=3600)
    key = _key(any_db)
    with study_in_thread(any_db.url, tmp_path / "work") as srv:
        squatter, honest = (Client(srv.study, verbose=False, download_files=False, headers={"X-Forwarded-For": ip})
                            for ip in ("203.0.113.9", "198.51.100.7"))
        held = squatter.predict("", {"study": key}, "the-squatters-join-key-0", api_name="/consent")
        for _ in range(3):  # more tries than the two joins a client may start
            with pytest.raises(AppError, match="full for now: .* offered again in about 10 minutes"):
                honest.predict("", {"study": key}, "the-honest-raters-key-0", api_name="/consent")
        _gone_quiet(any_db, [held])
        token = honest.predict("", {"study": key}, "the-honest-raters-key-0", api_name="/consent")
        assert honest.predict(token, api_name="/trial")["trial_id"]

        # the join limit itself still holds: the squatter's refused try is free, its joins are not
        with pytest.raises(AppError, match="full for now"):
            squatter.predict("", {"study": key}, "the-squatters-join-key-1", api_name="/consent")
        _gone_quiet(any_db, [token])
        again = squatter.predict("", {"study": key}, "the-squatters-join-key-1", api_name="/consent")
        assert again != held
        _gone_quiet(any_db, [again])  # a place is free, but this client has started its two sessions
        with pytest.raises(AppError, match="Too many new sessions"):
            squatter.predict("", {"study": key}, "the-squatters-join-key-2", api_name="/consent")
    assert service.progress(any_db).replanned_slots == 2


@pytest.mark.postgres
def test_a_rater_who_finishes_as_a_join_comes_in_keeps_their_slot(tmp_path, premuxed):
    """On PostgreSQL a join runs beside a vote. A rater past the hold whose last vote was being saved
    when a join came in had their slot planned again as unfinished, although they finished: the
    slot was rated twice and a full ``close_when_full`` study took one rater more. The join now skips
    a rater whose vote is being saved (SQLite runs one write at a time)."""
    db = open_test_database("postgresql", tmp_path)
    new_study(db, premuxed, participants=1, close_when_full=True, slot_hold_s=HOLD_S)
    key = _key(db)
    token = _joined(db, key)
    *_, last = _trials(db, _assignment(db, token).id)
    while (view := service.current_trial(db, token)).trial_id != last.id:
        service.record_vote(db, token, view.trial_id, "A", strength=3, response_ms=1500, played_a=True, played_b=True)
    _gone_quiet(db, [token])
    outcome = []
    with db.write() as s:  # the last vote, as record_vote saves it: the rater's row locked until the commit
        participant = s.scalar(select(Participant).where(Participant.token == token).with_for_update())
        participant.finished_at = utcnow()
        joining = threading.Thread(target=lambda: outcome.append(_outcome(lambda: service.join(db, key))))
        joining.start()
        joining.join(timeout=30)
    assert outcome and "full for now" in str(outcome[0]), outcome
    with pytest.raises(service.Refused, match=r"^This study is full; thank you"):
        service.join(db, key)
    assert service.progress(db).replanned_slots == 0
    db.dispose()


def _outcome(call):
    try:
        return call()
    except (service.StudyError, AppError) as exc:  # a refusal, through the service or the public API
        return exc


def test_joins_at_the_moment_holds_run_out_plan_each_slot_once_and_the_late_raters_votes_stay_their_own(
        any_db, tmp_path, premuxed):
    """The attack on a launched server: raters who went quiet in every slot of a full study, 24 joins
    from 24 addresses at the moment their holds run out, then the quiet raters come back and answer,
    trying the newcomers' trial ids too. Each slot is planned again once, for one newcomer, on trials
    of its own; nobody gets a server error; every acknowledged vote is stored once, on its own rater's
    trial; the progress and the participants export say which slots were rated twice."""
    slots = 3
    new_study(any_db, premuxed, participants=slots, close_when_full=True, slot_hold_s=HOLD_S, joins_per_client=1)
    key = _key(any_db)
    with study_in_thread(any_db.url, tmp_path / "work") as srv:
        def client(n: int) -> Client:
            return Client(srv.study, verbose=False, download_files=False, headers={"X-Forwarded-For": f"10.0.0.{n}"})

        quiet = [client(200 + n).predict("", {"study": key}, f"quiet-raters-key-{n:04d}", api_name="/consent")
                 for n in range(slots)]
        first = [client(200).predict(token, api_name="/trial")["trial_id"] for token in quiet]
        _gone_quiet(any_db, quiet)
        start, outcomes = threading.Barrier(24), []

        def join(n: int) -> None:
            rater = client(n)
            start.wait()
            outcomes.append(_outcome(lambda: rater.predict("", {"study": key}, f"joining-key-{n:08d}",
                                                           api_name="/consent")))

        threads = [threading.Thread(target=join, args=(n,)) for n in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        newcomers = [o for o in outcomes if isinstance(o, str)]
        assert len(outcomes) == 24 and len(newcomers) == slots, outcomes
        assert all("full for now" in str(o) for o in outcomes if not isinstance(o, str)), outcomes

        http = client(250)
        theirs = {http.predict(token, api_name="/trial")["trial_id"] for token in newcomers}
        acked = 0
        for token, trial_id in zip(quiet, first, strict=True):
            for other in theirs:
                with pytest.raises(AppError, match="not part of your session"):
                    http.predict(token, other, "B", None, True, True, 2000, 1.5, 1.5, api_name="/vote")
            while True:
                ack = http.predict(token, trial_id, "B", None, True, True, 2000, 1.5, 1.5, api_name="/vote")
                acked += 1
                if ack["next"].get("done"):
                    break
                trial_id = ack["next"]["trial_id"]
            assert http.predict(token, api_name="/completion_code") == http.predict(token, api_name="/completion_code")
    with any_db.read() as s:
        rows = s.execute(select(Assignment.slot, Assignment.released_at, Assignment.participant_id)).all()
        votes = s.execute(select(Vote.participant_id, Trial.assignment_id, Assignment.participant_id)
                          .join(Trial, Vote.trial_id == Trial.id).join(Assignment, Trial.assignment_id == Assignment.id)).all()
        fresh = s.scalars(select(Trial.served_at).join(Assignment, Trial.assignment_id == Assignment.id)
                          .where(Assignment.released_at.is_(None))).all()
    assert sorted(slot for slot, released, _ in rows if released is None) == list(range(slots))
    assert sorted(slot for slot, released, _ in rows if released is not None) == list(range(slots))
    assert len(votes) == acked and all(voter == owner for voter, _, owner in votes)
    assert sum(served is not None for served in fresh) == slots  # each newcomer was served their first trial only
    progress = service.progress(any_db)
    assert (progress.planned_slots, progress.replanned_slots, progress.participants, progress.finished) == \
        (slots, slots, 2 * slots, slots)
    exported = service.participant_rows(any_db)
    assert sorted(row["answers"] for row in exported if row["slot_replanned_at"]) == [acked // slots] * slots
