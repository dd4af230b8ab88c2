"""Faults under a running study app: an exclusive SQLite lock, a PostgreSQL server stopped and
started again, and one rater's vote through either."""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager

from gradio_client import Client
from gradio_client.exceptions import AppError

from vmnet_testkit.study_load.raters import RETRY_TEXT
from vmnet_testkit.study_load.servers import AppProcess, apps_still_serving
from vmnet_testkit.study_load.votes import stored_votes


def vote_through_fault(app: AppProcess, db_url: str, fault) -> dict:
    """One rater's vote while ``fault`` (a context manager) is in force, then the retry after it.

    During the fault: a vote must not be acknowledged (the error shown is recorded), and a reload
    (``/trial``) is tried too (its answer recorded). After it: nothing was stored, the retry ("B")
    is stored once and a resubmit ("A") returns the same ack.
    """
    client = Client(app.url, verbose=False, download_files=False)
    token = client.predict("", {}, api_name="/consent")
    view = client.predict(token, api_name="/trial")
    result = {"problems": []}
    with fault:
        started = time.monotonic()
        try:
            ack = client.predict(token, view["trial_id"], "A", None, True, True, 900, None, None, api_name="/vote")
            result["problems"].append(f"a vote during the fault was acknowledged: {ack}")
        except AppError as exc:
            result["error_shown"] = str(exc)
            if RETRY_TEXT not in str(exc).lower():
                result["problems"].append(f"unexpected error text: {exc}")
        result["failed_after_s"] = round(time.monotonic() - started, 2)
        try:
            result["reload_during_fault"] = client.predict(token, api_name="/trial")
        except AppError as exc:
            result["reload_during_fault"] = str(exc)
    result["stored_during_fault"] = len(stored_votes(db_url))
    ack = client.predict(token, view["trial_id"], "B", None, True, True, 900, None, None, api_name="/vote")
    again = client.predict(token, view["trial_id"], "A", None, True, True, 900, None, None, api_name="/vote")
    votes = stored_votes(db_url)
    result.update({"retry_ack_choice": ack["choice"], "resubmit_ack_choice": again["choice"],
                   "stored_after_retry": len(votes)})
    if result["stored_during_fault"] != 0:
        result["problems"].append("a vote was stored although the rater saw an error")
    if votes != [(token, view["trial_id"], "B")] or ack["choice"] != "B" or again["choice"] != "B":
        result["problems"].append(f"after the retry the database holds {votes}")
    result["problems"] += apps_still_serving([app])
    result["ok"] = not result["problems"]
    return result



@contextmanager
def sqlite_locked(db_file: str):
    """Another connection holds an exclusive SQLite transaction (``BEGIN EXCLUSIVE``) meanwhile."""
    blocker = sqlite3.connect(db_file, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()



@contextmanager
def postgres_down(server, down_s: float = 0.0, figures: dict | None = None):
    """The PostgreSQL server stopped (``pg_ctl stop -m fast``) meanwhile, and at least ``down_s``
    seconds in all; started again on the same data folder and socket afterwards. ``figures`` gets
    ``outage_s``: from the stop command to the server accepting connections again."""
    started = time.monotonic()
    server.pause()
    try:
        yield
        time.sleep(max(0.0, down_s - (time.monotonic() - started)))
    finally:
        server.resume()
        if figures is not None:
            figures["outage_s"] = round(time.monotonic() - started, 2)
