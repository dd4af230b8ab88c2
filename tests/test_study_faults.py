"""The study through faults, at small scale: ``kill -9`` of the app process during a session and a
restart on the same port and SQLite file (raters retry and resume from their token; acknowledged
votes are exactly the stored ones), a database locked past the busy timeout during a vote (the
rater is told saving failed, nothing is stored; the retry stores the vote once), and the same for
a PostgreSQL server stopped and started again under a running app process.

The figures at full size (50 raters x 20 trials, PostgreSQL with two app processes) come from
``bench/load_study.py``; this file reuses its servers, raters and checks (``vmnet_testkit/study_load/``).
"""

from __future__ import annotations

import pytest

from vmnet_testkit.ci import skip_or_fail
from vmnet_testkit.study_helpers import premux_clips
from vmnet_testkit.study_load.scenarios import scenario_crash, scenario_lock, scenario_pg_vote_outage
from vmnet_testkit.study_load.votes import clips_needed

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
    assert result["stored_during_fault"] == 0
    assert result["retry_ack_choice"] == result["resubmit_ack_choice"] == "B"
    assert result["stored_after_retry"] == 1
    assert result["problems"] == []


@pytest.mark.postgres
def test_postgres_down_gives_try_again_and_the_retry_after_restart_stores_once(premuxed, tmp_path):
    from vmnet_testkit import pg_server

    try:
        server = pg_server.private_server()  # its own cluster: stopping it spares the shared one
    except RuntimeError as exc:
        skip_or_fail(str(exc))
    try:
        result = scenario_pg_vote_outage(server, tmp_path, premuxed)
    finally:
        server.stop()
    assert result["error_shown"] == "Saving your answer failed; please try again."
    assert result["reload_during_fault"] == ("The study database is not reachable right now; "
                                             "please try again in a moment.")
    assert result["stored_during_fault"] == 0
    # the same app process, its connection pool recovered, stores the retry once
    assert result["retry_ack_choice"] == result["resubmit_ack_choice"] == "B"
    assert result["stored_after_retry"] == 1
    # a restart between two requests: stale pooled connections are replaced, no error reaches the rater
    assert result["first_vote_after_silent_restart"] == "A"
    assert result["stored_after_silent_restart"] == 2
    assert result["problems"] == []
