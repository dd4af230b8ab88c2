"""Hostile rater input through the real service and database (and the public API of a served study):
a join link's URL parameters are bounded in number, numbers a rater sends are bounded and typed
before the database, every refusal is one sentence; attention checks do not tell a condition."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest
from sqlalchemy import func, select

from study import service
from study.design import CHECK_CONDITION
from study.export import PARTICIPANT_CSV_COLUMNS, participants_csv
from study.models import Candidate, Participant, Study, Trial, Vote
from study.rater_input import MAX_RESPONSE_MS, MAX_URL_PARAMS
from study.service import NotFound, Refused
from study.ui_rater import heard_enough, join_and_consent
from vmnet_testkit.study_helpers import CONDITIONS, new_study, open_test_database, premux_clips
from vmnet_testkit.study_server import PageSession, study_in_thread

MANY = 5_000  # URL parameters in a hostile join link (the audit used ~95,000)


@pytest.fixture(scope="module")
def premuxed(tmp_path_factory):
    return premux_clips(tmp_path_factory.mktemp("rater_input_clips"), check_kind="noise")


@pytest.fixture
def db(premuxed, tmp_path):
    database = open_test_database("sqlite", tmp_path)
    new_study(database, premuxed)
    yield database
    database.dispose()


def _stored_params(db, token: str) -> dict:
    with db.read() as s:
        return s.scalar(select(Participant.url_params).where(Participant.token == token))


def _one_sentence(message: str) -> None:
    assert message[:1].isupper() and message.endswith(".") and "Error" not in message, message


def test_a_join_link_with_thousands_of_parameters_keeps_the_first_16_in_link_order(db):
    link = {"PROLIFIC_PID": "pid-1", "STUDY_ID": "s-1", "SESSION_ID": "x-1",
            **{f"junk{i}": "v" * 1000 for i in range(MANY)}}
    token = join_and_consent(db, None, link)
    stored = _stored_params(db, token)
    assert list(stored) == list(link)[:MAX_URL_PARAMS] and MAX_URL_PARAMS == 16
    assert stored["PROLIFIC_PID"] == "pid-1" and len(stored["junk0"]) == 500
    for _ in range(2):
        join_and_consent(db, None, link)
    rows = list(csv.DictReader(io.StringIO(participants_csv(db))))
    assert len(list(rows[0])) == len(PARTICIPANT_CSV_COLUMNS) + MAX_URL_PARAMS
    assert {r["url_PROLIFIC_PID"] for r in rows} == {"pid-1"}


def test_the_link_picks_its_study_even_past_the_16_parameters_kept(db, premuxed):
    new_study(db, premuxed, "study-two")
    with db.read() as s:
        first = s.scalar(select(Study.public_key).where(Study.name == "study-one"))
    link = {**{f"p{i}": "v" for i in range(40)}, "study": first}
    token = join_and_consent(db, None, link)
    assert service.study_info_for(db, token).key == first and "study" not in _stored_params(db, token)


def test_rows_stored_before_the_limit_export_16_parameters(db):
    token = service.join(db, None, {"PROLIFIC_PID": "old"})
    with db.write() as s:  # a participant stored before the limit, with 300 parameters
        participant = s.scalar(select(Participant).where(Participant.token == token))
        participant.url_params = {f"p{i:03d}": str(i) for i in range(300)}
    row = next(r for r in service.participant_rows(db) if r["participant"] == participant.id)
    assert sorted(k for k in row if k.startswith("url_")) == [f"url_p{i:03d}" for i in range(MAX_URL_PARAMS)]


def test_junk_names_that_differ_from_join_to_join_make_no_columns(db):
    platform = {"PROLIFIC_PID": "pid", "STUDY_ID": "s", "SESSION_ID": "x"}
    for join in range(6):  # each join: the platform's 3 names and 13 junk names of its own
        join_and_consent(db, None, {**platform, **{f"junk{join}_{i}": "v" for i in range(13)}})
    header = next(csv.reader(io.StringIO(participants_csv(db))))
    url_columns = [c for c in header if c.startswith("url_")]
    assert len(url_columns) <= MAX_URL_PARAMS and {"url_PROLIFIC_PID", "url_STUDY_ID", "url_SESSION_ID"} <= set(url_columns)


def test_joins_that_never_answer_cannot_push_a_platforms_id_out_of_the_export(db):
    honest = [join_and_consent(db, None, {"PROLIFIC_PID": f"pid-{i}"}) for i in range(3)]
    for token in honest:
        trial = service.current_trial(db, token)
        service.record_vote(db, token, trial.trial_id, "A", response_ms=900)
    junk = {f"!{i:02d}": "x" for i in range(MAX_URL_PARAMS)}  # 16 names sorting before "P", in more joins
    for _ in range(2 * len(honest)):
        join_and_consent(db, None, junk)
    rows = list(csv.DictReader(io.StringIO(participants_csv(db))))
    assert sorted(r["url_PROLIFIC_PID"] for r in rows if r["url_PROLIFIC_PID"]) == ["pid-0", "pid-1", "pid-2"]
    assert sum(json.loads(r["all_url_params"]) == junk for r in rows) == 2 * len(honest)  # nothing is lost


@pytest.mark.parametrize("url_params", [["PROLIFIC_PID"], "PROLIFIC_PID=1", 5, [["a", "b"]]])
def test_url_parameters_that_are_not_names_with_values_are_refused_with_a_sentence(db, url_params):
    with pytest.raises(Refused, match="URL parameters must be names with values") as refused:
        join_and_consent(db, None, url_params)
    _one_sentence(str(refused.value))
    with db.read() as s:
        assert s.scalar(select(func.count(Participant.id))) == 0


def _at_first_trial(db) -> tuple[str, int]:
    token = join_and_consent(db, None, {})
    return token, service.current_trial(db, token).trial_id


@pytest.mark.parametrize("field,value,message", [
    ("response_ms", 10**30, "response time must be a number of milliseconds from 0 to 86,400,000"),
    ("response_ms", MAX_RESPONSE_MS + 1, "response time"),
    ("response_ms", -1, "response time"),
    ("response_ms", float("inf"), "response time"),
    ("response_ms", True, "response time"),
    ("response_ms", "900", "response time"),
    ("strength", True, "strength must be a whole number from 1 to 5"),
    ("strength", 10**30, "strength"),
    ("played_a", "yes", "Whether soundtrack A was played must be true or false"),
    ("played_b", 10**30, "Whether soundtrack B was played"),
    ("trial_id", float("inf"), "not part of your session"),
    ("trial_id", 10**30, "not part of your session"),
    ("trial_id", 1.5, "not part of your session"),
    ("trial_id", "²", "not part of your session"),
    ("trial_id", [1], "not part of your session"),
])
def test_out_of_range_or_mistyped_vote_values_are_refused_with_a_sentence(db, field, value, message):
    token, trial_id = _at_first_trial(db)
    vote = {"trial_id": trial_id, "choice": "A", "strength": None, "response_ms": 900}
    with pytest.raises(Refused, match=message) as refused:
        service.record_vote(db, token, **{**vote, field: value})
    _one_sentence(str(refused.value))
    with db.read() as s:
        assert s.scalar(select(func.count(Vote.id))) == 0
    ack = service.record_vote(db, token, **{**vote, "trial_id": str(trial_id), "response_ms": MAX_RESPONSE_MS})
    assert ack.trial_id == trial_id  # the same vote in range is stored (a trial id as digits too)
    with db.read() as s:
        assert s.scalar(select(Vote.response_ms)) == MAX_RESPONSE_MS


@pytest.mark.parametrize("key", [10**30, {"a": 1}, "k" * 5000])
def test_a_study_key_or_token_of_the_wrong_type_or_size_is_simply_not_found(db, key):
    with pytest.raises(NotFound, match="This study link is not valid"):
        service.study_info(db, key)
    for call in (service.current_trial, service.completion_code, service.study_info_for):
        with pytest.raises(NotFound, match="This session is not known"):
            call(db, key)


def test_a_player_report_naming_an_infinite_trial_unlocks_nothing():
    report = {"trial": float("inf"), "a": 10.0, "b": 10.0, "duration_a": 10.0, "duration_b": 10.0}
    assert heard_enough(report, 1) is None
    assert heard_enough({**report, "trial": 1}, 1) == (10.0, 10.0)


def test_the_public_api_answers_hostile_values_with_one_sentence(db, tmp_path):
    with study_in_thread(db.url, tmp_path / "work") as served:
        page = PageSession(served.study)
        with pytest.raises(RuntimeError, match="URL parameters must be names with values") as refused:
            page.api("consent", "", ["PROLIFIC_PID"], "")
        assert "dictionary update sequence" not in str(refused.value)
        token = page.api("consent", "", {f"p{i}": "v" for i in range(1000)}, "")
        view = page.api("trial", token)
        with pytest.raises(RuntimeError, match="response time must be a number of milliseconds") as refused:
            page.api("vote", token, view["trial_id"], "A", None, True, True, 10**30, None, None)
        assert "SQLite" not in str(refused.value)
        assert page.api("vote", token, view["trial_id"], "A", None, True, True, 900, None, None)["number"] == 1
    with db.read() as s:
        assert len(s.scalar(select(Participant.url_params))) == MAX_URL_PARAMS


UNSTORABLE = {"PROLIFIC_PID": "\udfff\ud800pid\ud800", "\ud83d": "a\x00b", "STUDY_ID": "\u202egnp.exe\r\n=1"}


def test_url_parameters_no_database_or_file_can_hold_are_stored_readable_and_the_export_works(db, tmp_path):
    """A join through the public API whose link carries lone surrogates, NUL, a right-to-left
    override and a line break: stored with U+FFFD in their place, and both exports still work."""
    from study.export import export_participants, export_votes

    with study_in_thread(db.url, tmp_path / "work") as served:
        token = PageSession(served.study).api("consent", "", UNSTORABLE, "")
    assert _stored_params(db, token) == {"PROLIFIC_PID": "\ufffd\ufffdpid\ufffd", "\ufffd": "a\ufffdb",
                                         "STUDY_ID": "\ufffdgnp.exe\ufffd\ufffd=1"}
    with db.write() as s:  # a row stored before the check: the export reads it as text too
        s.add(Participant(study_id=s.scalar(select(Study.id)), token="stored-before", url_params=UNSTORABLE))
    export_votes(db, tmp_path / "votes.csv")
    rows = list(csv.DictReader(io.StringIO(export_participants(db, tmp_path / "people.csv").read_text("utf-8"))))
    assert [r["url_PROLIFIC_PID"] for r in rows] == ["\ufffd\ufffdpid\ufffd"] * 2


def test_attention_checks_of_a_stored_study_pair_noise_with_every_condition(premuxed, tmp_path):
    """The default config draws a check's real soundtrack per check: over the stored slots it is each
    of the study's conditions, so the file a check plays tells no condition."""
    database = open_test_database("sqlite", tmp_path)
    new_study(database, premuxed, participants=30, attention={"count": 2, "kind": "noise"})
    with database.read() as s:
        trials = s.scalars(select(Trial).where(Trial.kind == "attention")).all()
        conditions = {c.id: c.condition for c in s.scalars(select(Candidate))}
        music = Counter(conditions[t.candidate_b_id if t.expected_choice == "B" else t.candidate_a_id]
                        for t in trials)
        noise = {conditions[t.candidate_a_id if t.expected_choice == "B" else t.candidate_b_id] for t in trials}
    database.dispose()
    assert len(trials) == 60 and noise == {CHECK_CONDITION}
    assert set(music) == set(CONDITIONS) and min(music.values()) >= 10, music
