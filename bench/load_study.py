"""The study under load and faults: simulated raters (gradio_client, one process each) against
study-only app processes (``bench/serve_study.py``), with figures printed at the end.

Scenarios (all by default; pick with ``--scenarios``):

* ``sqlite``   — N raters at once, each finishing a T-trial session, one app process on SQLite;
* ``postgres`` — the same against two app processes sharing one PostgreSQL database (raters split
  across the two ports; needs the PostgreSQL binaries, see ``tests/pg_server.py``);
* ``crash``    — SQLite, one app process; ``kill -9`` once half the votes are in, restart on the
  same port and database; raters retry with backoff and resume from their token;
* ``lock``     — another connection holds an exclusive SQLite transaction longer than the server's
  busy timeout during a vote: the rater gets "saving failed, try again", the retry stores it once.

Every scenario checks that the acknowledged votes are exactly the stored ones (no loss, no
duplicates) and that each rater resumed at its next unanswered trial.

    python bench/load_study.py                          # 50 raters x 20 trials
    python bench/load_study.py --raters 4 --trials 6    # a quick smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

FIXED_TRIALS = 3  # besides the normal trials: one practice, one attention check, one swapped repeat
RETRY_TEXT = "try again"
STUDY_NAME = "load-study"


# ------------------------------------------------------------------------------------- servers
@dataclass
class AppProcess:
    """One ``bench/serve_study.py`` subprocess (restartable on the same port and database)."""

    db_url: str
    port: int
    work_dir: Path
    busy_timeout_ms: int | None = None
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/study/"

    def start(self, timeout_s: float = 180.0) -> None:
        """Start the server and wait until ``/study/config`` answers."""
        from study_server import wait_until_up

        cmd = [sys.executable, str(ROOT / "bench" / "serve_study.py"), "--db", self.db_url, "--port", str(self.port),
               "--work-dir", str(self.work_dir)]
        if self.busy_timeout_ms is not None:
            cmd += ["--busy-timeout-ms", str(self.busy_timeout_ms)]
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = (self.work_dir / f"server-{self.port}-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until_up(self.url + "config", timeout_s, self.proc)

    def kill9(self) -> None:
        """``kill -9``: no shutdown handlers, no flush."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()


@contextmanager
def serving(db_url: str, work_dir: Path, n_processes: int = 1, busy_timeout_ms: int | None = None):
    """``n_processes`` app processes on one database, started one after the other."""
    from study_server import free_port

    apps = [AppProcess(db_url, free_port(), work_dir / f"app{i}", busy_timeout_ms) for i in range(n_processes)]
    try:
        for app in apps:
            app.start()
        yield apps
    finally:
        for app in apps:
            app.stop()


# -------------------------------------------------------------------------------------- raters
@dataclass
class RaterReport:
    """What one simulated rater saw (client side)."""

    rater: int
    token: str = ""
    acked: list[tuple[int, str]] = field(default_factory=list)  # (trial_id, choice) confirmed by the server
    vote_ms: list[float] = field(default_factory=list)  # round trip of each confirmed vote call
    reconnects: int = 0
    save_failed: int = 0  # "saving failed, try again" answers
    resume_errors: list[str] = field(default_factory=list)
    code: str = ""
    error: str = ""


class Rater:
    """A scripted rater on ``/study``'s public API; retries with backoff through server outages and
    keeps its token (as the page's BrowserState does), so it resumes where the server says."""

    def __init__(self, url: str, report: RaterReport, give_up_s: float = 240.0, call_timeout_s: float = 60.0):
        self.url, self.report = url, report
        self.give_up_s, self.call_timeout_s = give_up_s, call_timeout_s
        self.client = None

    def _connect(self) -> None:
        from gradio_client import Client

        self.client = Client(self.url, verbose=False, download_files=False)

    def _drop_client(self) -> None:
        close = getattr(self.client, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # noqa: BLE001 - the server is gone; nothing to close cleanly
                pass
        self.client = None

    def call(self, api_name: str, *args, timed: list[float] | None = None):
        """Call an endpoint until it answers: reconnect after transport errors, back off after
        "try again" answers; other server errors are raised."""
        from gradio_client.exceptions import AppError

        deadline, delay = time.monotonic() + self.give_up_s, 0.2
        while True:
            try:
                if self.client is None:
                    self._connect()
                started = time.perf_counter()
                result = self.client.submit(*args, api_name=api_name).result(timeout=self.call_timeout_s)
                if timed is not None:
                    timed.append(1000 * (time.perf_counter() - started))
                return result
            except AppError as exc:
                if RETRY_TEXT not in str(exc).lower():
                    raise
                self.report.save_failed += 1
            except Exception as exc:  # noqa: BLE001 - connection refused/reset, stream closed, timeout
                if isinstance(exc, ValueError) and "Cannot find a function" in str(exc):
                    raise
                self.report.reconnects += 1
                self._drop_client()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{api_name} did not succeed within {self.give_up_s:.0f} s")
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 3.0)

    def run(self, seed: int) -> RaterReport:
        """Consent, answer every trial in order (a seeded random choice each), fetch the code."""
        rng = random.Random(seed)
        report = self.report
        join_key = f"load-rater-{report.rater}-{secrets.token_urlsafe(12)}"  # one key for every retry
        report.token = self.call("/consent", "", {"rater": str(report.rater)}, join_key)
        last_number = 0
        while True:
            view = self.call("/trial", report.token)
            if view["done"]:
                break
            if view["number"] != last_number + 1:
                report.resume_errors.append(f"after trial {last_number} the server offered {view['number']}")
            choice = rng.choice(["A", "B", "none"])
            ack = self.call("/vote", report.token, view["trial_id"], choice, None, True, True, 1000,
                            timed=report.vote_ms)
            if ack["trial_id"] != view["trial_id"] or ack["choice"] != choice:
                report.resume_errors.append(f"ack {ack} for trial {view['trial_id']} choice {choice}")
            report.acked.append((view["trial_id"], ack["choice"]))
            last_number = ack["number"]
        report.code = self.call("/completion_code", report.token)
        return report


def rater_process(url: str, rater: int, seed: int, barrier, results) -> None:
    """Body of one rater process: import, wait for every rater to be ready, then run."""
    import gradio_client  # noqa: F401 - import before the barrier so all raters start together

    report = RaterReport(rater)
    try:
        barrier.wait(timeout=600)
        Rater(url, report).run(seed)
    except Exception as exc:  # noqa: BLE001 - reported, checked by the caller
        report.error = f"{type(exc).__name__}: {exc}"
    results.put(report)


def start_raters(urls: list[str], n_raters: int, seed: int = 0):
    """Start ``n_raters`` processes (spawned), rater i on ``urls[i % len(urls)]``; returns a
    function that waits for and returns their reports."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(n_raters), ctx.Queue()
    procs = [ctx.Process(target=rater_process, args=(urls[i % len(urls)], i, seed * 1000 + i, barrier, results))
             for i in range(n_raters)]
    for p in procs:
        p.start()

    def collect(timeout_s: float = 900.0) -> list[RaterReport]:
        import queue

        keep_alive = barrier  # the barrier must outlive the children's start-up (spawn unpickles it)
        reports, deadline = [], time.monotonic() + timeout_s
        while len(reports) < len(procs) and time.monotonic() < deadline:
            try:
                reports.append(results.get(timeout=1.0))
            except queue.Empty:
                if all(not p.is_alive() for p in procs) and results.empty():
                    break
        missing = set(range(n_raters)) - {r.rater for r in reports}
        reports += [RaterReport(i, error="the rater process gave no report") for i in sorted(missing)]
        for p in procs:
            p.join(timeout=30)
        del keep_alive
        return sorted(reports, key=lambda r: r.rater)

    return collect


def run_raters_in_threads(urls: list[str], n_raters: int, seed: int = 0) -> list[RaterReport]:
    """The same raters as threads of this process (for tests: cheaper to start)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> RaterReport:
        report = RaterReport(i)
        try:
            Rater(urls[i % len(urls)], report).run(seed * 1000 + i)
        except Exception as exc:  # noqa: BLE001 - reported, checked by the caller
            report.error = f"{type(exc).__name__}: {exc}"
        return report

    with ThreadPoolExecutor(n_raters) as pool:
        return list(pool.map(one, range(n_raters)))


# ---------------------------------------------------------------------------------- the study
def make_study(db_url: str, premuxed, trials: int, name: str = STUDY_NAME) -> None:
    """Store a study whose sessions have ``trials`` trials (practice, check and repeat included)."""
    from study_helpers import new_study

    from study.db import Database

    db = Database(db_url)
    try:
        new_study(db, premuxed, name, trials_per_participant=trials - FIXED_TRIALS)
    finally:
        db.dispose()


def clips_needed(trials: int) -> int:
    """Clips for ``trials - 3`` distinct normal (clip, pair) trials with three conditions."""
    if trials < FIXED_TRIALS + 1:
        raise SystemExit(f"--trials must be at least {FIXED_TRIALS + 1}")
    return math.ceil((trials - FIXED_TRIALS) / 3)


def stored_votes(db_url: str) -> list[tuple[str, int, str]]:
    """Every stored vote as (token, trial_id, choice), practice included."""
    from sqlalchemy import select

    from study.db import Database
    from study.models import Participant, Vote

    db = Database(db_url, migrate=False)
    try:
        with db.read() as s:
            return [tuple(row) for row in s.execute(
                select(Participant.token, Vote.trial_id, Vote.choice).join(Participant, Vote.participant_id == Participant.id))]
    finally:
        db.dispose()


def participant_count(db_url: str) -> int:
    """Participants in the database (one per rater when joins are idempotent)."""
    from sqlalchemy import func, select

    from study.db import Database
    from study.models import Participant

    db = Database(db_url, migrate=False)
    try:
        with db.read() as s:
            return s.scalar(select(func.count(Participant.id)))
    finally:
        db.dispose()


def check(reports: list[RaterReport], db_url: str, trials: int) -> dict:
    """Acknowledged vs stored votes and the client-side figures; ``ok`` when nothing is off."""
    acked = sorted((r.token, t, c) for r in reports for t, c in r.acked)
    stored = sorted(stored_votes(db_url))
    participants = participant_count(db_url)
    lat = sorted(ms for r in reports for ms in r.vote_ms)

    def pct(q: float) -> float:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else float("nan")

    problems = [f"rater {r.rater}: {r.error}" for r in reports if r.error]
    problems += [f"rater {r.rater}: {e}" for r in reports for e in r.resume_errors]
    problems += [f"rater {r.rater}: {len(r.acked)} of {trials} trials" for r in reports
                 if not r.error and (len(r.acked) != trials or not r.code)]
    if participants != len(reports):
        problems.append(f"{participants} participants joined for {len(reports)} raters")
    if acked != stored:
        problems.append(f"acknowledged != stored: {len(set(acked) - set(stored))} acked but not stored, "
                        f"{len(set(stored) - set(acked))} stored but not acked, "
                        f"{len(stored) - len(set(stored))} duplicates")
    return {"raters": len(reports), "participants": participants, "trials": trials, "acked": len(acked),
            "stored": len(stored),
            "duplicates": len(stored) - len(set(stored)), "vote_p50_ms": pct(0.50), "vote_p95_ms": pct(0.95),
            "vote_max_ms": round(lat[-1], 1) if lat else float("nan"),
            "reconnects": sum(r.reconnects for r in reports), "save_failed": sum(r.save_failed for r in reports),
            "problems": problems, "ok": not problems}


# ---------------------------------------------------------------------------------- scenarios
def scenario_load(db_url: str, work: Path, premuxed, raters: int, trials: int, n_processes: int) -> dict:
    """N raters at once against ``n_processes`` app processes on one database."""
    make_study(db_url, premuxed, trials)
    with serving(db_url, work, n_processes) as apps:
        load_before = os.getloadavg()
        started = time.monotonic()
        reports = start_raters([a.url for a in apps], raters)()
        wall = time.monotonic() - started
        load_after = os.getloadavg()
    return {**check(reports, db_url, trials), "app_processes": n_processes, "wall_s": round(wall, 1),
            "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in load_after]}


def _vote_count(db_url: str) -> int:
    return len(stored_votes(db_url))


def scenario_crash(db_url: str, work: Path, premuxed, raters: int, trials: int, threads: bool = False) -> dict:
    """Kill -9 the only app process once half the votes are stored, restart it on the same port."""
    from study.db import Database
    from study.service import analyze, vote_rows

    make_study(db_url, premuxed, trials)
    with serving(db_url, work, 1) as (app,):
        if threads:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(1)
            future = pool.submit(run_raters_in_threads, [app.url], raters)
            collect = future.result
        else:
            collect = start_raters([app.url], raters)
        half, deadline = raters * trials // 2, time.monotonic() + 600
        while _vote_count(db_url) < half and time.monotonic() < deadline:
            time.sleep(0.05)
        app.kill9()
        killed_at = time.monotonic()
        db = Database(db_url, migrate=False)
        before = {(r["participant"], r["trial"]): r["choice"] for r in vote_rows(db, STUDY_NAME, include_practice=True)}
        app.start()
        restarted_s = time.monotonic() - killed_at
        reports = collect()
        if threads:
            pool.shutdown()
        after = {(r["participant"], r["trial"]): r["choice"] for r in vote_rows(db, STUDY_NAME, include_practice=True)}
        changed = [k for k, v in before.items() if after.get(k) != v]
        final = analyze(db, STUDY_NAME, n_boot=200)
        db.dispose()
    result = check(reports, db_url, trials)
    if changed:
        result["problems"].append(f"{len(changed)} votes stored before the kill changed or vanished after it")
        result["ok"] = False
    result.update({"stored_at_kill": len(before), "restart_s": round(restarted_s, 1),
                   "analysis_after": _analysis_summary(final)})
    return result


def _analysis_summary(analysis) -> dict:
    """The analysis in one line per pair: "first vs second" -> wins/losses/ties."""
    return {f"{p.first} vs {p.second}": f"{p.wins}/{p.losses}/{p.ties}" for p in analysis.pairs}


def scenario_lock(db_url: str, work: Path, premuxed, busy_timeout_ms: int = 1500) -> dict:
    """An exclusive SQLite transaction held past the server's busy timeout during a vote."""
    import sqlite3

    from gradio_client import Client
    from gradio_client.exceptions import AppError

    make_study(db_url, premuxed, FIXED_TRIALS + 1)
    db_file = db_url.removeprefix("sqlite:///")
    result = {"busy_timeout_ms": busy_timeout_ms, "problems": []}
    with serving(db_url, work, 1, busy_timeout_ms=busy_timeout_ms) as (app,):
        client = Client(app.url, verbose=False, download_files=False)
        token = client.predict("", {}, api_name="/consent")
        view = client.predict(token, api_name="/trial")
        blocker = sqlite3.connect(db_file, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            started = time.monotonic()
            try:
                ack = client.predict(token, view["trial_id"], "A", None, True, True, 900, api_name="/vote")
                result["problems"].append(f"a vote during the lock was acknowledged: {ack}")
            except AppError as exc:
                result["error_shown"] = str(exc)
                if RETRY_TEXT not in str(exc).lower():
                    result["problems"].append(f"unexpected error text: {exc}")
            result["failed_after_s"] = round(time.monotonic() - started, 2)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        result["stored_during_lock"] = len(stored_votes(db_url))
        ack = client.predict(token, view["trial_id"], "B", None, True, True, 900, api_name="/vote")
        again = client.predict(token, view["trial_id"], "A", None, True, True, 900, api_name="/vote")
        votes = stored_votes(db_url)
        result.update({"retry_ack_choice": ack["choice"], "resubmit_ack_choice": again["choice"],
                       "stored_after_retry": len(votes)})
        if result["stored_during_lock"] != 0:
            result["problems"].append("a vote was stored although the rater saw an error")
        if votes != [(token, view["trial_id"], "B")] or ack["choice"] != "B" or again["choice"] != "B":
            result["problems"].append(f"after the retry the database holds {votes}")
    result["ok"] = not result["problems"]
    return result


# ------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The study under load and faults (see the module docstring).")
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--trials", type=int, default=20, help="trials per session (at least 4)")
    parser.add_argument("--scenarios", default="sqlite,postgres,crash,lock")
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    from study_helpers import premux_clips

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="vmnet-load-study-"))
    work.mkdir(parents=True, exist_ok=True)
    premuxed = premux_clips(work / "clips", n=clips_needed(args.trials))
    figures = {"cpus": os.cpu_count(), "raters": args.raters, "trials": args.trials}
    for name in args.scenarios.split(","):
        folder = work / name
        folder.mkdir()
        print(f"--- {name}: {args.raters} raters x {args.trials} trials", flush=True)
        if name == "sqlite":
            out = scenario_load(f"sqlite:///{folder / 'study.db'}", folder, premuxed, args.raters, args.trials, 1)
        elif name == "postgres":
            import pg_server

            try:
                server = pg_server.shared_server()
            except RuntimeError as exc:
                out = {"skipped": str(exc), "ok": True}
            else:
                out = scenario_load(server.fresh_database(), folder, premuxed, args.raters, args.trials, 2)
        elif name == "crash":
            out = scenario_crash(f"sqlite:///{folder / 'study.db'}", folder, premuxed, args.raters, args.trials)
        elif name == "lock":
            out = scenario_lock(f"sqlite:///{folder / 'study.db'}", folder, premuxed)
        else:
            raise SystemExit(f"unknown scenario {name!r}")
        figures[name] = out
        print(json.dumps(out, indent=1, default=str), flush=True)
    figures["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
    ok = all(figures[n].get("ok") for n in args.scenarios.split(","))
    print("ALL OK" if ok else "PROBLEMS FOUND", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
