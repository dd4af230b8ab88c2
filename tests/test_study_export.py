"""CSV exports: long format with the order shown, formula-injection escaping, no secret tokens."""

from __future__ import annotations

import csv
import io
from dataclasses import fields

import pytest

from study import service
from study.export import (
    PARTICIPANT_CSV_COLUMNS,
    VOTE_CSV_COLUMNS,
    participants_csv,
    rows_to_csv,
    safe_cell,
    votes_csv,
)
from study.vote_row import VoteRow
from vmnet_testkit.study_helpers import new_study, open_test_database, premux_clips


@pytest.mark.parametrize("value,expected", [
    ("=1+2", "'=1+2"), ("+SUM(A1)", "'+SUM(A1)"), ("-2+3", "'-2+3"), ("@cmd", "'@cmd"),
    ("\tTAB", "'\tTAB"), ("\rCR", "'\rCR"), ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("plain", "plain"), ("a=b", "a=b"), ("", ""), (None, ""), (-3, -3), (2.5, 2.5), (True, True),
])
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def test_rows_to_csv_escapes_headers_and_cells_and_round_trips():
    text = rows_to_csv([{"name": "=cmd|' /C calc'!A0", "n": 1}, {"name": "ok, with comma", "n": -1}])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["name"] == "'=cmd|' /C calc'!A0" and rows[1]["name"] == "ok, with comma"
    assert rows[1]["n"] == "-1"  # numbers stay numbers


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    premuxed = premux_clips(folder, check_kind="noise")
    premuxed.clips[0].name = "=HYPERLINK(\"http://evil\")"  # a hostile clip name reaches the export
    premuxed.media = {(("=HYPERLINK(\"http://evil\")" if clip == "clip0" else clip), cond): name
                      for (clip, cond), name in premuxed.media.items()}
    db = open_test_database("sqlite", folder)
    new_study(db, premuxed)
    tokens = []
    for pid in ("@evil", "P2"):
        token = service.join(db, None, {"PROLIFIC_PID": pid})
        service.consent(db, token)
        view = service.current_trial(db, token)
        while view is not None:
            service.record_vote(db, token, view.trial_id, "B", 4, 1500, True, view.number % 2 == 0)
            view = service.current_trial(db, token)
        tokens.append(token)
    yield db, tokens
    db.dispose()


def test_votes_csv_is_long_format_in_the_order_shown(finished_study):
    db, tokens = finished_study
    rows = list(csv.DictReader(io.StringIO(votes_csv(db))))
    assert list(rows[0]) == VOTE_CSV_COLUMNS == [f.name for f in fields(VoteRow)]
    assert len(rows) == 2 * 8  # every trial but the practice one, for both raters
    assert {r["kind"] for r in rows} == {"normal", "attention", "repeat_swapped"}
    for r in rows:
        assert r["winner"] == r["condition_b"] and r["choice"] == "B" and r["strength"] == "4"
        assert r["both_played"] == str(r["played_b_to_end"] == "True")
    positions = [int(r["position"]) for r in rows if r["participant"] == rows[0]["participant"]]
    assert positions == sorted(positions) and positions[0] == 1
    assert {r["stimulus"] for r in rows} == {"'=HYPERLINK(\"http://evil\")", "clip1"}
    text = votes_csv(db) + participants_csv(db)
    assert all(token not in text for token in tokens)


def test_participants_csv_escapes_url_parameters(finished_study):
    db, _ = finished_study
    rows = list(csv.DictReader(io.StringIO(participants_csv(db))))
    assert list(rows[0])[:len(PARTICIPANT_CSV_COLUMNS)] == PARTICIPANT_CSV_COLUMNS
    assert [r["url_PROLIFIC_PID"] for r in rows] == ["'@evil", "P2"]
    assert all(r["finished_at"] and r["completion_code"] and r["answers"] == "9" for r in rows)
