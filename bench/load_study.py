"""The study under load and faults: simulated raters (gradio_client, one process each) against
study-only app processes (``bench/serve_study.py``), with figures printed at the end.

Scenarios (all by default; pick with ``--scenarios``):

* ``sqlite``   — N raters at once, each finishing a T-trial session, one app process on SQLite;
* ``postgres`` — the same against two app processes sharing one PostgreSQL database (raters split
  across the two ports; needs the PostgreSQL binaries, see ``tests/pg_server.py``);
* ``crash``    — SQLite, one app process; ``kill -9`` once half the votes are in, restart on the
  same port and database; raters retry with backoff and resume from their token;
* ``lock``     — another connection holds an exclusive SQLite transaction longer than the server's
  busy timeout during a vote: the rater gets "saving failed, try again", the retry stores it once;
* ``pg-outage`` — the ``postgres`` setup on a cluster of its own; once a third of the votes are in,
  the PostgreSQL server is stopped (``pg_ctl stop -m fast``) for ``--outage-s`` seconds and started
  again on the same data folder and socket. Raters get "try again" answers meanwhile and retry;
  the same two app processes (never restarted) serve on once the server is back;
* ``pg-long-outage`` — like ``pg-outage`` but down longer than the raters keep retrying (``--give-up-s``,
  10 s here; at least 30 s down): raters give up, and once the server is back each comes back with
  its token (as a reload of the page does) and finishes where the server says (not run by default).

Every scenario checks that the acknowledged votes are exactly the stored ones (no loss, no
duplicates), one participant per rater (joins retried after a time-out reuse the rater's join
key), and that each rater resumed at its next unanswered trial.

Latency is split three ways: the client's vote round trip; the server's own handler time (each
app process logs "<endpoint> <ms>" per API call, ``bench/serve_study.py --timing-log``); and the
CPU seconds the app processes and the rater processes used against the machine's capacity
(cores x wall time), which shows whether the raters starve the server of CPU.

Pacing: by default raters vote as fast as they can (the worst case). ``--think-s 1-3`` makes each
rater wait a uniform 1-3 s between receiving a trial and voting, standing in for watching a clip
with two soundtracks (real raters take far longer: every clip is played twice).

    python bench/load_study.py                          # 50 raters x 20 trials, no think time
    python bench/load_study.py --scenarios sqlite --think-s 1-3
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
from dataclasses import dataclass, field, replace
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

    @property
    def timing_log(self) -> Path:
        return self.work_dir / f"timing-{self.port}.log"

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the running process has used so far (Linux /proc)."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def start(self, timeout_s: float = 180.0) -> None:
        """Start the server and wait until ``/study/config`` answers."""
        from study_server import wait_until_up

        cmd = [sys.executable, str(ROOT / "bench" / "serve_study.py"), "--db", self.db_url, "--port", str(self.port),
               "--work-dir", str(self.work_dir), "--timing-log", str(self.timing_log)]
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


def apps_still_serving(apps: list[AppProcess]) -> list[str]:
    """Problems if an app process exited or was restarted during the run (empty when all served on)."""
    return [f"app process on port {a.port} " + ("exited" if a.proc is None or a.proc.poll() is not None
                                                  else f"was started {a.starts} times")
            for a in apps if a.proc is None or a.proc.poll() is not None or a.starts != 1]


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
    cpu_s: float = 0.0  # CPU seconds of the rater's process (process mode only)


@dataclass(frozen=True)
class RaterOptions:
    """How the simulated raters behave.

    ``think_s``: (low, high) seconds to wait, uniformly drawn, before each vote (None: vote at once,
    the worst case). ``ssl_verify``: gradio_client's certificate check. It means nothing for the
    plain ``http://127.0.0.1`` servers here, yet with it on gradio_client builds a fresh SSL
    context (the CA bundle, ~40 ms CPU) for every request it sends, ~0.1 s of client CPU per call,
    which on a 2-core machine starves the server; off by default, ``--ssl-verify`` turns it on.
    """

    think_s: tuple[float, float] | None = None
    ssl_verify: bool = False
    give_up_s: float = 240.0  # a call that has not succeeded by then ends the rater's run (an error)


class Rater:
    """A scripted rater on ``/study``'s public API; retries with backoff through server outages and
    keeps its token (as the page's BrowserState does), so it resumes where the server says."""

    def __init__(self, url: str, report: RaterReport, call_timeout_s: float = 60.0,
                 options: RaterOptions = RaterOptions()):
        self.url, self.report, self.options = url, report, options
        self.call_timeout_s = call_timeout_s
        self.client = None

    def _connect(self) -> None:
        from gradio_client import Client

        self.client = Client(self.url, verbose=False, download_files=False, ssl_verify=self.options.ssl_verify)

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

        deadline, delay = time.monotonic() + self.options.give_up_s, 0.2
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
                raise TimeoutError(f"{api_name} did not succeed within {self.options.give_up_s:.0f} s")
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 3.0)

    def run(self, seed: int, last_number: int = 0) -> RaterReport:
        """Consent (or, with ``report.token`` set, come back as that participant, as the page does
        with the token in BrowserState), ask for the current trial once, then answer every trial in
        order (a seeded random choice each; each vote's answer names the next trial), fetch the code.
        ``last_number``: the last trial this rater saw confirmed before coming back."""
        rng = random.Random(seed)
        report = self.report
        join_key = f"load-rater-{report.rater}-{secrets.token_urlsafe(12)}"  # one key for every retry
        report.token = self.call("/consent", report.token, {"rater": str(report.rater)}, join_key)
        view = self.call("/trial", report.token)  # where the server says this rater stands
        while True:
            if view["done"]:
                break
            if view["number"] != last_number + 1:
                report.resume_errors.append(f"after trial {last_number} the server offered {view['number']}")
            choice = rng.choice(["A", "B", "none"])
            if self.options.think_s:
                time.sleep(rng.uniform(*self.options.think_s))  # watching the clip with both soundtracks
            ack = self.call("/vote", report.token, view["trial_id"], choice, None, True, True, 1000,
                            timed=report.vote_ms)
            if ack["trial_id"] != view["trial_id"] or ack["choice"] != choice:
                report.resume_errors.append(f"ack {ack} for trial {view['trial_id']} choice {choice}")
            report.acked.append((view["trial_id"], ack["choice"]))
            last_number = ack["number"]
            view = ack["next"]  # the vote's answer names the next trial: one call per trial
        report.code = self.call("/completion_code", report.token)
        return report


def rater_process(url: str, rater: int, seed: int, barrier, results, options: RaterOptions, may_exit) -> None:
    """Body of one rater process: import, wait for every rater to be ready, run, report, and stay
    (idle) until every rater has reported, so no process's exit competes with the others' calls."""
    import gradio_client  # noqa: F401 - import before the barrier so all raters start together

    report = RaterReport(rater)
    try:
        barrier.wait(timeout=600)
        cpu_at_start = time.process_time()
        Rater(url, report, options=options).run(seed)
        report.cpu_s = time.process_time() - cpu_at_start
    except Exception as exc:  # noqa: BLE001 - reported, checked by the caller
        report.error = f"{type(exc).__name__}: {exc}"
    results.put(report)
    may_exit.wait(timeout=900)


def start_raters(urls: list[str], n_raters: int, seed: int = 0, options: RaterOptions = RaterOptions()):
    """Start ``n_raters`` processes (spawned), rater i on ``urls[i % len(urls)]``, and release them
    together once every one has started (so start-up is not timed); returns a function that waits
    for and returns their reports."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, results, may_exit = ctx.Barrier(n_raters + 1), ctx.Queue(), ctx.Event()  # the raters and this process
    procs = [ctx.Process(target=rater_process,
                         args=(urls[i % len(urls)], i, seed * 1000 + i, barrier, results, options, may_exit))
             for i in range(n_raters)]
    for p in procs:
        p.start()
    barrier.wait(timeout=600)

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
        may_exit.set()
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


def _percentiles(values: list[float]) -> dict:
    """p50, p95 and max of ``values`` (ms), rounded; NaN when empty."""
    v = sorted(values)
    if not v:
        return {"p50": float("nan"), "p95": float("nan"), "max": float("nan")}
    return {"p50": round(v[len(v) // 2], 1), "p95": round(v[min(len(v) - 1, int(0.95 * len(v)))], 1),
            "max": round(v[-1], 1)}


def server_handler_ms(apps: list[AppProcess]) -> dict:
    """The app processes' own time per API call (from their timing logs): endpoint -> percentiles."""
    by_endpoint: dict[str, list[float]] = {}
    for app in apps:
        if app.timing_log.exists():
            for line in app.timing_log.read_text().splitlines():
                name, _, ms = line.partition(" ")
                by_endpoint.setdefault(name, []).append(float(ms))
    return {name: {"calls": len(v), **_percentiles(v)} for name, v in sorted(by_endpoint.items())}


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
    by_position = [sorted(r.vote_ms[i] for r in reports if len(r.vote_ms) > i)
                   for i in range(max((len(r.vote_ms) for r in reports), default=0))]

    def pct(q: float, values: list[float] = lat) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 1) if values else float("nan")

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
            "vote_p95_ms_by_position": [pct(0.95, v) for v in by_position],  # each rater's 1st vote, 2nd, ...
            "reconnects": sum(r.reconnects for r in reports), "save_failed": sum(r.save_failed for r in reports),
            "problems": problems, "ok": not problems}


# ---------------------------------------------------------------------------------- scenarios
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


def wait_for_votes(db_url: str, n: int, timeout_s: float = 600.0) -> int:
    """Poll until at least ``n`` votes are stored (or ``timeout_s`` passed); returns the count seen."""
    deadline = time.monotonic() + timeout_s
    while (count := len(stored_votes(db_url))) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def _analysis_of(db, rows: list) -> dict:
    """The study's analysis (its configured pairs, tie rule, screening) of these vote rows, as a dict."""
    from study.service import study_config
    from study.stats import analyze_votes

    c = study_config(db, STUDY_NAME)
    return analyze_votes(rows, c.conditions, c.condition_pairs, c.headline_pair, c.tie_rule,
                         c.screening.max_attention_failure_rate, c.screening.min_repeat_consistency,
                         n_boot=200, seed=c.seed).to_dict()


def scenario_crash(db_url: str, work: Path, premuxed, raters: int, trials: int, threads: bool = False,
                   options: RaterOptions = RaterOptions()) -> dict:
    """Kill -9 the only app process once half the votes are stored, restart it on the same port.

    Checks besides :func:`check`: every vote stored at the kill is unchanged afterwards (all its
    columns), and the analysis of those votes is the same before the restart and after it.
    """
    from study.db import Database
    from study.service import analyze, vote_rows

    make_study(db_url, premuxed, trials)
    load_before = os.getloadavg()
    with serving(db_url, work, 1) as (app,):
        if threads:
            from concurrent.futures import ThreadPoolExecutor

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
        analysis_at_kill = _analysis_of(db, [r for r in before.values() if r.kind != "practice"])
        app.start()
        restarted_s = time.monotonic() - killed_at
        reports = collect()
        if threads:
            pool.shutdown()
        after = {(r.participant, r.trial): r for r in vote_rows(db, STUDY_NAME, include_practice=True)}
        changed = [k for k, v in before.items() if after.get(k) != v]
        same_votes_after = _analysis_of(db, [after[k] for k in before if k in after and after[k].kind != "practice"])
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
                   "analysis_at_kill": _analysis_summary_dict(analysis_at_kill),
                   "analysis_at_kill_unchanged": not analysis_changes,
                   "analysis_after": _analysis_summary(final)})
    return result


def analysis_difference(a, b, path: str = "") -> list[str]:
    """Where two analysis dicts differ: counts and texts exactly, floats beyond a relative 1e-4
    (the headline mixed model's fit varies in the 6th digit between identical runs)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} vs {sorted(b)}"]
        return [d for k in a for d in analysis_difference(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in analysis_difference(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float) and not isinstance(a, bool):
        return [] if math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-9) else [f"{path}: {a} vs {b}"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def _analysis_summary(analysis) -> dict:
    """The analysis in one line per pair: "first vs second" -> wins/losses/ties."""
    return {f"{p.first} vs {p.second}": f"{p.wins}/{p.losses}/{p.ties}" for p in analysis.pairs}


def _analysis_summary_dict(analysis: dict) -> dict:
    """:func:`_analysis_summary` of an analysis already turned into a dict."""
    return {f"{p['first']} vs {p['second']}": f"{p['wins']}/{p['losses']}/{p['ties']}" for p in analysis["pairs"]}


def vote_through_fault(app: AppProcess, db_url: str, fault) -> dict:
    """One rater's vote while ``fault`` (a context manager) is in force, then the retry after it.

    During the fault: a vote must not be acknowledged (the error shown is recorded), and a reload
    (``/trial``) is tried too (its answer recorded). After it: nothing was stored, the retry ("B")
    is stored once and a resubmit ("A") returns the same ack.
    """
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(app.url, verbose=False, download_files=False)
    token = client.predict("", {}, api_name="/consent")
    view = client.predict(token, api_name="/trial")
    result = {"problems": []}
    with fault:
        started = time.monotonic()
        try:
            ack = client.predict(token, view["trial_id"], "A", None, True, True, 900, api_name="/vote")
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
    ack = client.predict(token, view["trial_id"], "B", None, True, True, 900, api_name="/vote")
    again = client.predict(token, view["trial_id"], "A", None, True, True, 900, api_name="/vote")
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
    import sqlite3

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
    from gradio_client import Client
    from gradio_client.exceptions import AppError

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
            ack = client.predict(token, view["trial_id"], "A", None, True, True, 900, api_name="/vote")
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
        comebacks = _come_back(urls, gave_up, options)
        gone = apps_still_serving(apps)
    merged = [_merged(r, comebacks.get(r.rater)) for r in first]
    result = check(merged, db_url, trials)
    result["problems"] += gone
    if not gave_up:
        result["problems"].append("no rater gave up: the outage was not longer than their retries")
    result["ok"] = not result["problems"]
    return {**figures, **result, "comebacks": len(comebacks)}


def _come_back(urls: list[str], gave_up: list[RaterReport], options: RaterOptions) -> dict[int, RaterReport]:
    """Each rater that gave up comes back with its token (threads of this process) and finishes."""
    from concurrent.futures import ThreadPoolExecutor

    def one(first: RaterReport) -> RaterReport:
        report = RaterReport(first.rater, token=first.token)
        last_number = len(first.acked)  # trials are confirmed in order, 1, 2, ...: the count is the last number
        try:
            Rater(urls[first.rater % len(urls)], report, options=options).run(first.rater + 10_000, last_number)
        except Exception as exc:  # noqa: BLE001 - reported, checked by the caller
            report.error = f"{type(exc).__name__}: {exc}"
        return report

    if not gave_up:
        return {}
    with ThreadPoolExecutor(len(gave_up)) as pool:
        return {r.rater: r for r in pool.map(one, gave_up)}


def _merged(first: RaterReport, comeback: RaterReport | None) -> RaterReport:
    """One report of a rater's two parts (the comeback's error and code count; None: no comeback)."""
    if comeback is None:
        return first
    return replace(first, acked=first.acked + comeback.acked, vote_ms=first.vote_ms + comeback.vote_ms,
                   reconnects=first.reconnects + comeback.reconnects, save_failed=first.save_failed + comeback.save_failed,
                   resume_errors=first.resume_errors + comeback.resume_errors, code=comeback.code, error=comeback.error)


# ------------------------------------------------------------------------------------------- CLI
def _think_range(text: str) -> tuple[float, float]:
    """``"1-3"`` -> (1.0, 3.0); one number means a fixed wait."""
    try:
        low, _, high = text.partition("-")
        pair = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--think-s takes LOW-HIGH seconds such as 1-3, not {text!r}") from None
    if not 0 <= pair[0] <= pair[1]:
        raise argparse.ArgumentTypeError(f"--think-s needs 0 <= LOW <= HIGH, not {text!r}")
    return pair


def scenario_postgres(server, work: Path, premuxed, raters: int, trials: int, options: RaterOptions) -> dict:
    """The load against two app processes sharing a fresh database on ``server``."""
    return scenario_load(server.fresh_database(), work, premuxed, raters, trials, 2, options)


def _with_postgres(private: bool, scenario, *args) -> dict:
    """``scenario(server, *args)`` on the shared PostgreSQL server (or a private cluster, which a
    scenario may stop); a skip note when the PostgreSQL binaries are missing."""
    import pg_server

    try:
        server = pg_server.private_server() if private else pg_server.shared_server()
    except RuntimeError as exc:
        return {"skipped": str(exc), "ok": True}
    return scenario(server, *args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The study under load and faults (see the module docstring).")
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--trials", type=int, default=20, help="trials per session (at least 4)")
    parser.add_argument("--scenarios", default="sqlite,postgres,crash,lock,pg-outage")
    parser.add_argument("--outage-s", type=float, default=5.0,
                        help="pg-outage: seconds PostgreSQL stays down (pg-long-outage: at least 3 x --give-up-s)")
    parser.add_argument("--give-up-s", type=float, default=None,
                        help="seconds a rater retries one call before giving up (default 240; pg-long-outage: 10)")
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--think-s", type=_think_range, default=None, metavar="LOW-HIGH",
                        help="wait uniform(LOW, HIGH) seconds before each vote, e.g. 1-3 (default: none, the worst case)")
    parser.add_argument("--ssl-verify", action="store_true",
                        help="leave gradio_client's certificate check on (its default; costs ~0.1 s client CPU per call)")
    args = parser.parse_args(argv)

    from study_helpers import premux_clips

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="vmnet-load-study-"))
    work.mkdir(parents=True, exist_ok=True)
    premuxed = premux_clips(work / "clips", n=clips_needed(args.trials))
    options = RaterOptions(args.think_s, args.ssl_verify, give_up_s=args.give_up_s or 240.0)
    figures = {"cpus": os.cpu_count(), "raters": args.raters, "trials": args.trials, "think_s": args.think_s,
               "client_ssl_verify": args.ssl_verify}
    for name in args.scenarios.split(","):
        folder = work / name
        folder.mkdir()
        print(f"--- {name}: {args.raters} raters x {args.trials} trials", flush=True)
        if name == "sqlite":
            out = scenario_load(f"sqlite:///{folder / 'study.db'}", folder, premuxed, args.raters, args.trials, 1,
                                options)
        elif name == "postgres":
            out = _with_postgres(False, scenario_postgres, folder, premuxed, args.raters, args.trials, options)
        elif name == "crash":
            out = scenario_crash(f"sqlite:///{folder / 'study.db'}", folder, premuxed, args.raters, args.trials,
                                 options=options)
        elif name == "lock":
            out = scenario_lock(f"sqlite:///{folder / 'study.db'}", folder, premuxed)
        elif name == "pg-long-outage":
            long_options = RaterOptions(args.think_s, args.ssl_verify, give_up_s=args.give_up_s or 10.0)
            out = _with_postgres(True, scenario_pg_long_outage, folder, premuxed, args.raters, args.trials,
                                 max(args.outage_s, 3 * long_options.give_up_s), long_options)
        elif name == "pg-outage":  # its own cluster: stopping it spares ``postgres``
            out = _with_postgres(True, scenario_pg_outage, folder, premuxed, args.raters, args.trials, args.outage_s,
                                 options)
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
