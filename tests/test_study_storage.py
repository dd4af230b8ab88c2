"""Study storage and the rater service on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import csv
import io
import threading
from dataclasses import asdict

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from study import service
from study.db import upgrade
from study.models import Assignment, Base, Participant, Trial, Vote
from vmnet_testkit.study_helpers import new_study, open_test_database, premux_clips


@pytest.fixture(scope="module")
def premuxed(tmp_path_factory):
    return premux_clips(tmp_path_factory.mktemp("clips"))


def _rater(db, key=None, params=None):
    token = service.join(db, key, params or {})
    service.consent(db, token)
    return token


def _answer(db, token, view, choice="A"):
    return service.record_vote(db, token, view.trial_id, choice, strength=None if choice == "none" else 3,
                               response_ms=1200, played_a=True, played_b=True)


def test_migrations_match_the_models_and_rerun_cleanly(any_db):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    upgrade(any_db.engine)  # a second upgrade is a no-op
    with any_db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert diff == [] and version == "0004"


def test_the_join_key_migration_keeps_earlier_participants(tmp_path, premuxed):
    from study.db import Database

    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url, migrate=False)
    upgrade(db.engine, "0001")
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO study (name, public_key, created_at, is_open, seed, media_dir, config, design) "
                          "VALUES ('old', 'k', '2026-01-01', 1, 0, '/m', '{}', '{}')"))
        conn.execute(text("INSERT INTO participant (study_id, token, created_at, url_params, screening) "
                          "VALUES (1, 'old-token', '2026-01-01', '{}', 'pending')"))
    upgrade(db.engine)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT token, join_key FROM participant")).all() == [("old-token", None)]
    db.dispose()


def test_one_vote_per_participant_and_trial_is_enforced_by_the_database(any_db, premuxed):
    study = new_study(any_db, premuxed)
    token = _rater(any_db, service.study_info(any_db).key)
    view = service.current_trial(any_db, token)
    with any_db.read() as s:
        participant_id = s.scalar(select(Assignment.participant_id).join(Trial).where(Trial.id == view.trial_id))
    with pytest.raises(IntegrityError):
        with any_db.write() as s:
            for _ in range(2):
                s.add(Vote(study_id=1, trial_id=view.trial_id, participant_id=participant_id, choice="A"))
                s.flush()
    assert study == "study-one"


def test_rater_flow_resumes_at_first_unanswered_and_codes_only_when_done(any_db, premuxed):
    new_study(any_db, premuxed)
    token = service.join(any_db, None, {"PROLIFIC_PID": "abc123"})
    with pytest.raises(service.Refused):
        service.current_trial(any_db, token)  # consent first
    service.consent(any_db, token)
    first = service.current_trial(any_db, token)
    assert first.number == 1 and first.practice and first.answered == 0
    total = first.total
    assert total == 1 + 6 + 1 + 1  # practice + 2 clips x 3 pairs + swapped repeat + attention check
    _answer(any_db, token, first)
    second = service.current_trial(any_db, token)
    _answer(any_db, token, second, "B")
    # a reload (a fresh call with the same token) resumes at the first unanswered trial
    resumed = service.current_trial(any_db, token)
    assert resumed.number == 3 and resumed.answered == 2 and resumed.trial_id not in (first.trial_id, second.trial_id)
    with pytest.raises(service.Refused, match="not finished"):
        service.completion_code(any_db, token)
    view, acks = resumed, []
    while view is not None:
        acks.append(_answer(any_db, token, view, "none" if view.number % 3 == 0 else "A"))
        view = service.current_trial(any_db, token)
    assert acks[-1].finished and not any(a.finished for a in acks[:-1])
    code = service.completion_code(any_db, token)
    assert len(code) >= 8 and service.completion_code(any_db, token) == code
    progress = service.progress(any_db)
    assert (progress.participants, progress.consented, progress.finished) == (1, 1, 1)
    assert progress.votes == 6 and sum(progress.votes_by_pair.values()) == 6
    rows = service.participant_rows(any_db)
    assert rows[0]["url_PROLIFIC_PID"] == "abc123" and rows[0]["answers"] == total
    assert all(token not in str(v) for v in rows[0].values())


def test_double_submit_stores_one_vote_and_returns_the_same_ack(any_db, premuxed):
    new_study(any_db, premuxed)
    token = _rater(any_db)
    view = service.current_trial(any_db, token)
    acks, errors = [], []

    def submit(choice):
        try:
            acks.append(service.record_vote(any_db, token, view.trial_id, choice, None, 900, True, True))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=("A" if i % 2 == 0 else "B",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(acks) == 8 and len(set(acks)) == 1  # every click got the same confirmation
    with any_db.read() as s:
        stored = s.scalars(select(Vote).where(Vote.trial_id == view.trial_id)).all()
    assert len(stored) == 1 and stored[0].choice == acks[0].choice
    # a later resubmit, after moving on, still returns the same ack and stores nothing
    nxt = service.current_trial(any_db, token)
    _answer(any_db, token, nxt)
    assert service.record_vote(any_db, token, view.trial_id, "none") == acks[0]
    with any_db.read() as s:
        assert s.scalar(select(func.count(Vote.id))) == 2


def test_votes_on_foreign_or_out_of_order_trials_are_refused(any_db, premuxed):
    new_study(any_db, premuxed)
    alice, bob = _rater(any_db), _rater(any_db)
    alice_view, bob_view = service.current_trial(any_db, alice), service.current_trial(any_db, bob)
    assert alice_view.trial_id != bob_view.trial_id
    with pytest.raises(service.Refused, match="not part of your session"):
        service.record_vote(any_db, alice, bob_view.trial_id, "A")
    with pytest.raises(service.Refused, match="in order"):
        service.record_vote(any_db, alice, alice_view.trial_id + 1, "A")
    with pytest.raises(service.NotFound):
        service.record_vote(any_db, "not-a-token", alice_view.trial_id, "A")
    with pytest.raises(service.Refused):
        service.record_vote(any_db, alice, alice_view.trial_id, "maybe")
    with pytest.raises(service.Refused):
        service.record_vote(any_db, alice, alice_view.trial_id, "A", strength=9)
    with pytest.raises(service.Refused, match="strength goes with a preference for A or B"):
        service.record_vote(any_db, alice, alice_view.trial_id, "none", strength=2)
    with pytest.raises(service.Refused, match="listening time of soundtrack A must be a number of seconds from 0"):
        service.record_vote(any_db, alice, alice_view.trial_id, "A", listened_a_s=-1.0, listened_b_s=3.0)
    with any_db.read() as s:
        assert s.scalar(select(func.count(Vote.id))) == 0


def test_concurrent_joins_get_distinct_slots_and_the_plan_extends(any_db, premuxed):
    new_study(any_db, premuxed, participants=2)
    tokens, errors = [], []

    def join():
        try:
            tokens.append(service.join(any_db))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=join) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(tokens)) == 5
    with any_db.read() as s:
        slots = s.execute(select(Assignment.slot, Assignment.participant_id)).all()
    assert sorted(slot for slot, _ in slots) == [0, 1, 2, 3, 4]
    assert len({p for _, p in slots}) == 5 and None not in {p for _, p in slots}


def test_a_retried_join_is_answered_without_a_write(tmp_path, premuxed):
    """A join retried with its key (or sent again and again by a script: such a retry is never
    counted against the join limit) is answered from a read: with another writer holding SQLite's
    write lock it still returns at once, while a new join waits for the lock and is refused."""
    import sqlite3

    db = open_test_database("sqlite", tmp_path, busy_timeout_ms=300)
    new_study(db, premuxed, "retried")
    with db.read() as s:
        from study.models import Study

        key = s.scalar(select(Study.public_key))
    first = service.join(db, key, join_key="r" * 20)
    holder = sqlite3.connect(tmp_path / "study.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
    try:
        assert [service.join(db, key, join_key="r" * 20) for _ in range(50)] == [first] * 50
        with pytest.raises(service.SaveFailed):
            service.join(db, key, join_key="n" * 20)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        db.dispose()


def test_a_join_retried_with_the_same_key_returns_the_same_participant(any_db, premuxed):
    new_study(any_db, premuxed, "first")
    new_study(any_db, premuxed, "second", seed=99)
    with any_db.read() as s:
        from study.models import Participant, Study

        keys = dict(s.execute(select(Study.name, Study.public_key)).all())
    key = "k" * 20
    first = service.join(any_db, keys["first"], {"PROLIFIC_PID": "p1"}, join_key=key)
    assert service.join(any_db, keys["first"], {"PROLIFIC_PID": "p1"}, join_key=key) == first
    assert service.join(any_db, keys["first"], join_key="m" * 20) != first
    assert service.join(any_db, keys["second"], join_key=key) != first  # a key is scoped to its study
    tokens, errors = [], []

    def join():
        try:
            tokens.append(service.join(any_db, keys["first"], join_key="c" * 20))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=join) for _ in range(4)]  # four attempts at once, one key
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(tokens) == 4 and len(set(tokens)) == 1
    with any_db.read() as s:
        per_study = dict(s.execute(select(Study.name, func.count(Participant.id)).join(Participant)
                                   .group_by(Study.name)).all())
        assigned = s.scalar(select(func.count(Assignment.id)).where(Assignment.participant_id.is_not(None)))
    assert per_study == {"first": 3, "second": 1} and assigned == 4
    with pytest.raises(IntegrityError):  # the database itself holds one participant per (study, key)
        with any_db.write() as s:
            study_id = s.scalar(select(Study.id).where(Study.name == "first"))
            s.add(Participant(study_id=study_id, token="another-token", url_params={}, join_key=key))
            s.flush()
    for bad in ("short", "x" * 65, "spaces are not allowed here"):
        with pytest.raises(service.Refused, match="join key must be"):
            service.join(any_db, keys["first"], join_key=bad)


def test_closed_and_full_studies_refuse_new_raters(any_db, premuxed):
    new_study(any_db, premuxed, participants=1, close_when_full=True)
    service.join(any_db)
    with pytest.raises(service.Refused, match="full"):
        service.join(any_db)
    service.set_open(any_db, "study-one", False)
    with pytest.raises(service.NotFound):
        service.join(any_db)  # no open study to default to
    with any_db.read() as s:
        from study.models import Study

        public_key = s.scalar(select(Study.public_key))
    with pytest.raises(service.Refused, match="closed"):
        service.join(any_db, public_key)


def test_two_studies_in_one_database_stay_apart(any_db, premuxed):
    new_study(any_db, premuxed, "first")
    new_study(any_db, premuxed, "second", seed=99, media={"fade_s": 0.5})
    assert service.list_studies(any_db) == ["first", "second"]
    with any_db.read() as s:
        from study.models import Study

        keys = dict(s.execute(select(Study.name, Study.public_key)).all())
    a = _rater(any_db, keys["first"])
    b = _rater(any_db, keys["second"])
    assert service.study_info_for(any_db, a).key == keys["first"]
    for token in (a, b):
        view = service.current_trial(any_db, token)
        while view is not None and view.answered < 3:
            _answer(any_db, token, view)
            view = service.current_trial(any_db, token)
    b_view = service.current_trial(any_db, b)
    with pytest.raises(service.Refused):
        service.record_vote(any_db, a, b_view.trial_id, "A")
    first_rows, second_rows = service.vote_rows(any_db, "first"), service.vote_rows(any_db, "second")
    assert {r.study for r in first_rows} == {"first"} and {r.study for r in second_rows} == {"second"}
    assert {r.participant for r in first_rows}.isdisjoint({r.participant for r in second_rows})
    assert service.progress(any_db, "first").participants == 1
    assert len(service.participant_rows(any_db, "second")) == 1
    with pytest.raises(service.NotFound, match="2 studies"):
        service.progress(any_db)


def test_rater_payloads_are_blind(any_db, premuxed):
    new_study(any_db, premuxed)
    token = _rater(any_db)
    secrets_ = {"ground_truth", "vmnet", "random", "__attention__", "clip0", "clip1", "Title of", "-track-", ".wav"}
    secrets_ |= {str(c.video) for c in premuxed.clips}
    info = service.study_info_for(any_db, token)
    seen = [str(asdict(info))]
    view = service.current_trial(any_db, token)
    while view is not None:
        seen.append(str(asdict(view)))
        assert service.media_path(any_db, view.media_a).is_file()
        seen.append(str(asdict(_answer(any_db, token, view))))
        view = service.current_trial(any_db, token)
    payload = "\n".join(seen)
    leaked = [word for word in secrets_ if word in payload]
    assert leaked == []
    with pytest.raises(service.NotFound):
        service.media_path(any_db, "../study.db")


def _one_trial_sqlite_study(tmp_path, premuxed, request, busy_timeout_ms: int):
    """A SQLite study of one trial per rater with the given busy timeout: (db, token, first view)."""
    db = open_test_database("sqlite", tmp_path, busy_timeout_ms=busy_timeout_ms)
    request.addfinalizer(db.dispose)
    new_study(db, premuxed, attention={"count": 0}, swapped_repeats=0, practice=False, trials_per_participant=1)
    token = _rater(db)
    return db, token, service.current_trial(db, token)


def test_a_failed_save_raises_and_never_confirms(tmp_path, premuxed, request):
    db, token, view = _one_trial_sqlite_study(tmp_path, premuxed, request, busy_timeout_ms=200)
    blocker = db.engine.raw_connection()
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    try:
        with pytest.raises(service.SaveFailed, match="try again"):
            service.record_vote(db, token, view.trial_id, "A")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert service.current_trial(db, token) == view  # nothing stored: the same trial again
    with pytest.raises(service.Refused):
        service.completion_code(db, token)
    ack = service.record_vote(db, token, view.trial_id, "A")  # the retry works
    assert ack.finished and service.completion_code(db, token)


@pytest.mark.postgres
def test_a_failed_save_on_postgres_raises_save_failed(tmp_path, premuxed, request):
    from vmnet_testkit import pg_server
    from vmnet_testkit.ci import skip_or_fail

    try:
        server = pg_server.shared_server()
    except RuntimeError as exc:
        skip_or_fail(str(exc))
    url = server.fresh_database() + "&options=-c%20lock_timeout%3D300"
    from study.db import Database

    db = Database(url)
    request.addfinalizer(db.dispose)
    new_study(db, premuxed, attention={"count": 0}, swapped_repeats=0, practice=False, trials_per_participant=1)
    token = _rater(db)
    view = service.current_trial(db, token)
    with db.engine.connect() as holder:
        holder.execute(text("LOCK TABLE vote IN ACCESS EXCLUSIVE MODE"))
        with pytest.raises(service.SaveFailed):
            service.record_vote(db, token, view.trial_id, "B")
        holder.rollback()
    assert service.record_vote(db, token, view.trial_id, "B").choice == "B"


def test_attention_failures_screen_a_rater_out(any_db, premuxed):
    new_study(any_db, premuxed)
    token = _rater(any_db)
    view = service.current_trial(any_db, token)
    with any_db.read() as s:
        expected = dict(s.execute(select(Trial.id, Trial.expected_choice).where(Trial.kind == "attention")).all())
    while view is not None:
        wrong = {"A": "B", "B": "A"}.get(expected.get(view.trial_id))
        _answer(any_db, token, view, wrong or "A")
        view = service.current_trial(any_db, token)
    assert service.participant_rows(any_db)[0]["screening"] == "excluded"
    assert service.progress(any_db).screened_out == 1
    assert service.analyze(any_db, n_boot=10).raters_included == 0


def test_each_ack_names_the_next_trial_as_current_trial_would(any_db, premuxed):
    new_study(any_db, premuxed)
    token = _rater(any_db)
    view = service.current_trial(any_db, token)
    while view is not None:
        ack = _answer(any_db, token, view)
        assert ack.next_trial == service.current_trial(any_db, token)
        assert ack.finished == (ack.next_trial is None)
        if ack.next_trial is not None:
            assert all(p.is_file() for p in ack.next_trial.media_paths())
        view = ack.next_trial


def test_a_write_queued_behind_this_processs_own_writer_fails_after_the_busy_timeout(tmp_path, premuxed, request):
    db, token, view = _one_trial_sqlite_study(tmp_path, premuxed, request, busy_timeout_ms=300)
    holding, release = threading.Event(), threading.Event()

    def slow_writer():
        with db.write():  # this process's writer that does not finish in time
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=slow_writer)
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(service.SaveFailed, match="try again"):
            service.record_vote(db, token, view.trial_id, "A")
    finally:
        release.set()
        holder.join()
    assert service.current_trial(db, token) == view  # nothing stored
    assert service.record_vote(db, token, view.trial_id, "A").finished  # the retry works once the writer is done


def test_every_view_agrees_on_who_is_screened_out(any_db, premuxed):
    """Three raters: one finishes passing, one finishes failing the attention checks, one stops
    right after failing one. The admin's progress, the participants rows and CSV, the analysis and
    the status stored at finish name the same raters."""
    from study.export import participants_csv
    from study.ui_admin import progress_markdown

    new_study(any_db, premuxed, attention={"count": 2, "kind": "noise"})
    tokens = [_rater(any_db) for _ in range(3)]
    with any_db.read() as s:
        expected = dict(s.execute(select(Trial.id, Trial.expected_choice).where(Trial.kind == "attention")).all())
    for n, token in enumerate(tokens):
        view = service.current_trial(any_db, token)
        while view is not None:
            right = expected.get(view.trial_id)
            wrong = {"A": "B", "B": "A"}.get(right)
            _answer(any_db, token, view, (wrong if n else right) or "A")
            if n == 2 and right:
                break  # the third rater stops after failing the first check (another follows)
            view = service.current_trial(any_db, token)
    ids = {row["participant"]: row for row in service.participant_rows(any_db)}
    passing, failing, stopped = sorted(ids)
    assert [ids[p]["finished_at"] != "" for p in (passing, failing, stopped)] == [True, True, False]
    by_rows = {p for p, row in ids.items() if row["screening"] == "excluded"}
    assert by_rows == {failing, stopped}
    csv_rows = list(csv.DictReader(io.StringIO(participants_csv(any_db))))
    assert {int(r["participant"]) for r in csv_rows if r["screening"] == "excluded"} == by_rows
    analysis = service.analyze(any_db, n_boot=10)
    assert {s.participant for s in analysis.screening if s.excluded} == by_rows
    assert analysis.raters_included == 1
    progress = service.progress(any_db)
    assert progress.screened_out == len(by_rows)
    assert f"| {progress.finished} | {len(by_rows)} |" in progress_markdown(progress)
    with any_db.read() as s:
        stored = dict(s.execute(select(Participant.id, Participant.screening)).all())
    assert stored == {passing: "included", failing: "excluded", stopped: "pending"}
