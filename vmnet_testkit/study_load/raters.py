"""Simulated raters on ``/study``'s public API (gradio_client): one process each (spawned) or
threads of this process; they retry through outages and resume from their token."""

from __future__ import annotations

import multiprocessing as mp
import queue
import random
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from gradio_client import Client
from gradio_client.exceptions import AppError

RETRY_TEXT = "try again"
"""Part of the server's answer when saving failed and the rater should retry."""


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
    ctx = mp.get_context("spawn")
    barrier, results, may_exit = ctx.Barrier(n_raters + 1), ctx.Queue(), ctx.Event()  # the raters and this process
    procs = [ctx.Process(target=rater_process,
                         args=(urls[i % len(urls)], i, seed * 1000 + i, barrier, results, options, may_exit))
             for i in range(n_raters)]
    for p in procs:
        p.start()
    barrier.wait(timeout=600)

    def collect(timeout_s: float = 900.0) -> list[RaterReport]:
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
    def one(i: int) -> RaterReport:
        report = RaterReport(i)
        try:
            Rater(urls[i % len(urls)], report).run(seed * 1000 + i)
        except Exception as exc:  # noqa: BLE001 - reported, checked by the caller
            report.error = f"{type(exc).__name__}: {exc}"
        return report

    with ThreadPoolExecutor(n_raters) as pool:
        return list(pool.map(one, range(n_raters)))



def come_back(urls: list[str], gave_up: list[RaterReport], options: RaterOptions) -> dict[int, RaterReport]:
    """Each rater that gave up comes back with its token (threads of this process) and finishes."""
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



def merged_report(first: RaterReport, comeback: RaterReport | None) -> RaterReport:
    """One report of a rater's two parts (the comeback's error and code count; None: no comeback)."""
    if comeback is None:
        return first
    return replace(first, acked=first.acked + comeback.acked, vote_ms=first.vote_ms + comeback.vote_ms,
                   reconnects=first.reconnects + comeback.reconnects, save_failed=first.save_failed + comeback.save_failed,
                   resume_errors=first.resume_errors + comeback.resume_errors, code=comeback.code, error=comeback.error)
