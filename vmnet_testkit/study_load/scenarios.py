"""The load study's scenarios, each returning its figures as a dict (``ok``, ``problems``, counts,
latencies, CPU): load on SQLite or PostgreSQL, ``kill -9`` and restart, a locked SQLite database, and
PostgreSQL outages shorter and longer than the raters retry. ``bench/load_study.py`` runs them at
full size; ``tests/test_study_faults.py`` at small size."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gradio_client import Client
from gradio_client.exceptions import AppError

from study.db import Database
from study.service import analyze, vote_rows
from vmnet_testkit import pg_server
from vmnet_testkit.study_load.faults import postgres_down, sqlite_locked, vote_through_fault
from vmnet_testkit.study_load.raters import (
    RaterOptions,
    come_back,
    merged_report,
    run_raters_in_threads,
    start_raters,
)
from vmnet_testkit.study_load.servers import apps_still_serving, server_handler_ms, serving
from vmnet_testkit.study_load.votes import (
    FIXED_TRIALS,
    STUDY_NAME,
    analysis_difference,
    analysis_of,
    analysis_summary,
    analysis_summary_dict,
    check,
    make_study,
    stored_votes,
    wait_for_votes,
)


def scenario_load(db_url: str, work: Path, premuxed, raters: int, trials: int, n_processes: int,
                  options: RaterOptions = RaterOptions(), fault=None) -> dict:
    """N raters at once against ``n_processes`` app processes on one database.

    ``fault``: called with the app processes once the raters are released, while they vote; it
    returns figures (a dict, its ``problems`` list joined to the checks') and may block.
    """
    make_study(db_url, premuxed, trials)
    with serving(db_url, work, n_processes) as apps:
        collect = start_raters([a.url for a in apps], raters, options=options)
        load_before = os.getloadavg()
        cpu_before, started = [a.cpu_s() for a in apps], time.monotonic()
        fault_figures = fault(apps) if fault is not None else {}
        reports = collect()
        wall = time.monotonic() - started
        server_cpu = sum(a.cpu_s() for a in apps) - sum(cpu_before)
        load_after = os.getloadavg()
        gone = apps_still_serving(apps)
    capacity = (os.cpu_count() or 1) * wall
    result = check(reports, db_url, trials)
    result["problems"] += gone + fault_figures.pop("problems", [])
    result["ok"] = not result["problems"]
    return {**result, **fault_figures, "app_processes": n_processes, "think_s": options.think_s,
            "wall_s": round(wall, 1), "server_handler_ms": server_handler_ms(apps),
            "cpu_s": {"app_processes": round(server_cpu, 1), "raters": round(sum(r.cpu_s for r in reports), 1),
                      "machine_capacity": round(capacity, 1)},
            "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in load_after]}



def scenario_crash(db_url: str, work: Path, premuxed, raters: int, trials: int, threads: bool = False,
                   options: RaterOptions = RaterOptions()) -> dict:
    """Kill -9 the only app process once half the votes are stored, restart it on the same port.

    Checks besides :func:`check`: every vote stored at the kill is unchanged afterwards (all its
    columns), and the analysis of those votes is the same before the restart and after it.
    """
    make_study(db_url, premuxed, trials)
    load_before = os.getloadavg()
    with serving(db_url, work, 1) as (app,):
        if threads:
            pool = ThreadPoolExecutor(1)
            future = pool.submit(run_raters_in_threads, [app.url], raters)
            collect = future.result
        else:
            collect = start_raters([app.url], raters, options=options)
        wait_for_votes(db_url, raters * trials // 2)
        app.kill9()
        killed_at = time.monotonic()
        db = Database(db_url, migrate=False)
        before = {(r.participant, r.trial): r for r in vote_rows(db, STUDY_NAME, include_practice=True)}
        analysis_at_kill = analysis_of(db, [r for r in before.values() if r.kind != "practice"])
        app.start()
        restarted_s = time.monotonic() - killed_at
        reports = collect()
        if threads:
            pool.shutdown()
        after = {(r.participant, r.trial): r for r in vote_rows(db, STUDY_NAME, include_practice=True)}
        changed = [k for k, v in before.items() if after.get(k) != v]
        same_votes_after = analysis_of(db, [after[k] for k in before if k in after and after[k].kind != "practice"])
        final = analyze(db, STUDY_NAME, n_boot=200)
        db.dispose()
    result = check(reports, db_url, trials)
    if changed:
        result["problems"].append(f"{len(changed)} votes stored before the kill changed or vanished after it")
    analysis_changes = analysis_difference(analysis_at_kill, same_votes_after)
    if analysis_changes:
        result["problems"].append(f"the analysis of the votes stored at the kill changed after the restart: "
                                  f"{analysis_changes[:5]}")
    result.update({"ok": not result["problems"], "stored_at_kill": len(before), "restart_s": round(restarted_s, 1),
                   "loadavg_before": [round(x, 2) for x in load_before],
                   "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                   "analysis_at_kill": analysis_summary_dict(analysis_at_kill),
                   "analysis_at_kill_unchanged": not analysis_changes,
                   "analysis_after": analysis_summary(final)})
    return result



def scenario_lock(db_url: str, work: Path, premuxed, busy_timeout_ms: int = 1500) -> dict:
    """An exclusive SQLite transaction held past the server's busy timeout during a vote."""
    make_study(db_url, premuxed, FIXED_TRIALS + 1)
    with serving(db_url, work, 1, busy_timeout_ms=busy_timeout_ms) as (app,):
        result = vote_through_fault(app, db_url, sqlite_locked(db_url.removeprefix("sqlite:///")))
    return {"busy_timeout_ms": busy_timeout_ms, **result}



def scenario_pg_vote_outage(server, work: Path, premuxed) -> dict:
    """One vote while the PostgreSQL server is stopped, against one app process; then the retry.

    Then a silent restart (stop and start with no request between, so the app's pooled
    connections are stale, not yet known dead): the next reload and vote must succeed at once
    (``first_vote_after_silent_restart``: the ack's choice, or the error shown).
    """
    db_url = server.fresh_database()
    make_study(db_url, premuxed, FIXED_TRIALS + 1)
    figures: dict = {}
    with serving(db_url, work, 1) as (app,):
        result = vote_through_fault(app, db_url, postgres_down(server, figures=figures))
        client = Client(app.url, verbose=False, download_files=False)
        token = client.predict("", {}, api_name="/consent")
        with postgres_down(server):
            pass
        try:
            view = client.predict(token, api_name="/trial")
            ack = client.predict(token, view["trial_id"], "A", None, True, True, 900, None, None, api_name="/vote")
            result["first_vote_after_silent_restart"] = ack["choice"]
        except AppError as exc:
            result["first_vote_after_silent_restart"] = str(exc)
            result["problems"].append(f"the first call after a silent restart failed: {exc}")
        result["stored_after_silent_restart"] = len(stored_votes(db_url))
    result["ok"] = not result["problems"]
    return {**figures, **result}



def scenario_pg_outage(server, work: Path, premuxed, raters: int, trials: int, down_s: float = 5.0,
                       options: RaterOptions = RaterOptions()) -> dict:
    """The ``postgres`` load with the PostgreSQL server stopped for ``down_s`` seconds once a third
    of the votes are stored. Checks besides :func:`check`: the raters saw "try again" answers,
    and the two app processes served on without a restart."""
    db_url = server.fresh_database()

    def outage(_apps) -> dict:
        figures = {"stored_at_stop": wait_for_votes(db_url, raters * trials // 3), "problems": []}
        with postgres_down(server, down_s, figures):
            pass
        figures["stored_right_after_restart"] = len(stored_votes(db_url))
        return figures

    result = scenario_load(db_url, work, premuxed, raters, trials, 2, options, fault=outage)
    if result["save_failed"] == 0:
        result["problems"].append("no rater was told to try again: the outage went unnoticed")
    result["ok"] = not result["problems"]
    return result



def scenario_pg_long_outage(server, work: Path, premuxed, raters: int, trials: int, down_s: float = 30.0,
                            options: RaterOptions = RaterOptions(give_up_s=10.0)) -> dict:
    """PostgreSQL down for longer than the raters keep retrying (``down_s`` > ``options.give_up_s``):
    raters give up during the outage; once the server is back every rater that gave up comes back
    with its token (as a reload of the page does) and finishes. Checks: votes acknowledged in
    either part = votes stored, one participant per rater, each comeback resumed right after the
    last confirmed trial, and the two app processes served on without a restart."""
    if down_s <= options.give_up_s:
        raise SystemExit(f"--outage-s ({down_s:g}) must be longer than --give-up-s ({options.give_up_s:g})")
    db_url = server.fresh_database()
    make_study(db_url, premuxed, trials)
    figures: dict = {"outage_s_planned": down_s, "give_up_s": options.give_up_s}
    with serving(db_url, work, 2) as apps:
        urls = [a.url for a in apps]
        collect = start_raters(urls, raters, options=options)
        figures["stored_at_stop"] = wait_for_votes(db_url, raters * trials // 3)
        with postgres_down(server, down_s, figures):
            pass
        first = collect()
        gave_up = [r for r in first if r.error]
        figures["gave_up"] = len(gave_up)
        figures["gave_up_errors"] = sorted({r.error.split(":")[0] for r in gave_up})
        comebacks = come_back(urls, gave_up, options)
        gone = apps_still_serving(apps)
    merged = [merged_report(r, comebacks.get(r.rater)) for r in first]
    result = check(merged, db_url, trials)
    result["problems"] += gone
    if not gave_up:
        result["problems"].append("no rater gave up: the outage was not longer than their retries")
    result["ok"] = not result["problems"]
    return {**figures, **result, "comebacks": len(comebacks)}



def scenario_postgres(server, work: Path, premuxed, raters: int, trials: int, options: RaterOptions) -> dict:
    """The load against two app processes sharing a fresh database on ``server``."""
    return scenario_load(server.fresh_database(), work, premuxed, raters, trials, 2, options)



def with_postgres(private: bool, scenario, *args) -> dict:
    """``scenario(server, *args)`` on the shared PostgreSQL server (or a private cluster, which a
    scenario may stop); a skip note when the PostgreSQL binaries are missing."""
    try:
        server = pg_server.private_server() if private else pg_server.shared_server()
    except RuntimeError as exc:
        return {"skipped": str(exc), "ok": True}
    return scenario(server, *args)
