"""The error-log budget (webguard.error_log): how many tracebacks a window writes, what the rest
become, and how long one may be. The attack on a launched server is in test_attacks.py."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from webguard.error_log import ErrorLogBudget


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def _budgeted_logger(name: str, budget: ErrorLogBudget, out: io.StringIO) -> Iterator[logging.Logger]:
    """A logger writing to ``out`` through a handler filtered by ``budget``."""
    handler = logging.StreamHandler(out)
    handler.addFilter(budget.as_filter())
    log = logging.getLogger(name)
    log.addHandler(handler)
    log.propagate = False
    try:
        yield log
    finally:
        log.removeHandler(handler)


def _fail(budget: ErrorLogBudget, exc: Exception) -> None:
    try:
        raise exc
    except Exception:
        budget.print_exc()


def test_a_window_writes_its_first_tracebacks_and_one_line_for_the_rest():
    clock, out = _Clock(), io.StringIO()
    budget = ErrorLogBudget(burst=3, window_s=60, clock=clock, stream=lambda: out)
    for i in range(10):
        _fail(budget, ValueError(f"bad input {i}") if i % 2 else KeyError(i))
    text = out.getvalue()
    assert text.count("Traceback (most recent call last)") == 3
    assert "bad input 1" in text and "bad input 3" not in text and "more error tracebacks" not in text
    clock.now += 59.9
    _fail(budget, TypeError("still the same window"))
    assert "still the same window" not in out.getvalue()
    clock.now += 0.2  # the next window: its first error is written, after the line about the last one
    _fail(budget, TypeError("a new window"))
    after = out.getvalue()[len(text):]
    summary, _, rest = after.partition("\n")
    assert summary == ("vmnet: 8 more error tracebacks were not written in 60 s (at most 3 are written a window): "
                       "ValueError 4, KeyError 3, TypeError 1")
    assert rest.startswith("Traceback") and "a new window" in rest
    clock.now += 120  # a quiet window says nothing
    _fail(budget, TypeError("after a quiet spell"))
    assert "more error tracebacks" not in out.getvalue()[len(text) + len(after):]


def test_a_long_traceback_keeps_its_ends_and_says_how_much_was_cut():
    out = io.StringIO()
    budget = ErrorLogBudget(burst=1, max_chars=1000, stream=lambda: out)
    _fail(budget, ValueError("HEAD" + "x" * 900_000 + "TAIL"))
    text = out.getvalue()
    assert len(text) < 1100 and text.startswith("Traceback") and "TAIL" in text
    assert "characters not shown ...]" in text
    assert budget.shortened("short") == "short"


def test_burst_zero_writes_every_traceback():
    out = io.StringIO()
    budget = ErrorLogBudget(burst=0, stream=lambda: out)
    for _ in range(50):
        _fail(budget, RuntimeError("every one"))
    assert out.getvalue().count("every one") == 50


def test_logged_tracebacks_share_the_budget_and_plain_warnings_have_their_own():
    clock, out = _Clock(), io.StringIO()
    budget = ErrorLogBudget(burst=2, window_s=60, max_chars=600, clock=clock, stream=lambda: out)
    with _budgeted_logger("test_error_log.budgeted", budget, out) as log:
        for i in range(6):
            try:
                raise ValueError("y" * 5000 + f"end{i}")
            except ValueError:
                log.exception("handler %d failed", i)
            log.warning("plain warning %d", i)
            log.info("info %d", i)  # below a warning: not budgeted
        clock.now += 61
        try:
            raise KeyError("next")
        except KeyError:
            log.exception("next window")
    text = out.getvalue()
    assert [f"handler {i} failed" in text for i in range(6)] == [True, True, False, False, False, False]
    assert [f"plain warning {i}" in text for i in range(6)] == [True, True, False, False, False, False]
    assert "vmnet: 4 more warnings were not written in 60 s" in text and "'plain warning %d' 4" in text
    assert "characters not shown" in text and "end0" in text  # cut, with its end kept
    assert "vmnet: 4 more error tracebacks were not written in 60 s" in text and "next window" in text
    assert budget.format_exc is not None  # the rest of the traceback module, for Gradio's modules


def test_a_flood_of_one_warning_writes_a_few_lines_and_a_count():
    """uvicorn writes "Invalid HTTP request received." for every malformed request and two lines for
    every WebSocket upgrade asked for, without a traceback: one client on loopback made 165-300 kB
    of log a second (bypass audit). Now each message is written ``burst`` times a window, counted after."""
    clock, out = _Clock(), io.StringIO()
    budget = ErrorLogBudget(burst=5, window_s=60, clock=clock, stream=lambda: out)
    with _budgeted_logger("test_error_log.uvicorn", budget, out) as log:
        for _ in range(10_000):
            log.warning("Invalid HTTP request received.")
            log.warning("Unsupported upgrade request.")
        clock.now += 60
        log.warning("Unsupported upgrade request.")
    text = out.getvalue()
    assert text.count("Invalid HTTP request received.") == 5 + 1 and len(text) < 2000, len(text)
    assert ("vmnet: 19990 more warnings were not written in 60 s (at most 5 of each are written a window): "
            "'Invalid HTTP request received.' 9995, 'Unsupported upgrade request.' 9995") in text
