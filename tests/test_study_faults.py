"""The study through faults, at small scale: ``kill -9`` of the app process during a session and a
restart on the same port and SQLite file (raters retry and resume from their token; acknowledged
votes are exactly the stored ones), and a database locked past the busy timeout during a vote
(the rater is told saving failed, nothing is stored; the retry stores the vote once).

The figures at full size (50 raters x 20 trials, PostgreSQL with two app processes) come from
``bench/load_study.py``; this file reuses its servers, raters and checks.
"""

from __future__ import annotations

import pytest
from study_helpers import premux_clips

from bench.load_study import clips_needed, scenario_crash, scenario_lock

RATERS, TRIALS = 3, 6


@pytest.fixture(scope="module")
def premuxed(tmp_path_factory):
    return premux_clips(tmp_path_factory.mktemp("fault_clips"), n=clips_needed(TRIALS))


def test_kill_9_mid_session_then_restart_keeps_every_acknowledged_vote(premuxed, tmp_path):
    result = scenario_crash(f"sqlite:///{tmp_path / 'study.db'}", tmp_path, premuxed, RATERS, TRIALS, threads=True)
    assert result["problems"] == []  # no rater error, every rater resumed at its next unanswered trial
    assert 0 < result["stored_at_kill"] < RATERS * TRIALS  # the kill really happened mid-session
    assert result["reconnects"] > 0  # ... and the raters really lived through it
    assert result["acked"] == result["stored"] == RATERS * TRIALS and result["duplicates"] == 0


def test_a_locked_database_gives_save_failed_never_a_false_ack(premuxed, tmp_path):
    result = scenario_lock(f"sqlite:///{tmp_path / 'study.db'}", tmp_path, premuxed, busy_timeout_ms=1000)
    assert result["error_shown"] == "Saving your answer failed; please try again."
    assert result["stored_during_lock"] == 0
    assert result["retry_ack_choice"] == result["resubmit_ack_choice"] == "B"
    assert result["stored_after_retry"] == 1
    assert result["problems"] == []
