"""Errors a visitor can trigger, written to the server's log within a budget.

Gradio prints a whole traceback for every event that fails, and a visitor decides when one fails: a
page event sent with inputs of the wrong number or type, or without the event data a click carries,
costs 1.3-2.6 kB of log, and Gradio's message for too few inputs echoes every input sent (up to the
1-MB body a visitor may send). A script sending such events as fast as the server answers would fill
the disk. :class:`ErrorLogBudget` writes the first ``burst`` tracebacks of each ``window_s`` whole (each
cut to ``max_chars``), only counts the rest by exception type, and says how many it left out in one
line at the next error after the window has passed. It stands in for the ``traceback`` module inside
Gradio's queue and routes (:meth:`install_in`) and filters logging records that carry a traceback
(:meth:`as_filter`).

Warnings without a traceback are budgeted too, ``burst`` of each message a window: uvicorn writes one
for every malformed request ("Invalid HTTP request received.") and two for every request asking for a
WebSocket upgrade, which one client could send 1,000-2,000 times a second on loopback (165-300 kB of
log a second, found by the bypass audit); the rest are counted in the same closing line.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TextIO

ERRORS_PER_MINUTE = 5
"""Tracebacks written whole per minute by default (``python app.py --log-errors-per-minute``)."""
MAX_TRACEBACK_CHARS = 4000
"""Longest traceback written: longer ones keep their first and last halves (a visitor's input echoed
in the message is what makes them long)."""


class ErrorLogBudget:
    """The first ``burst`` tracebacks of each ``window_s`` seconds, each at most ``max_chars`` long
    (``burst`` 0: every one); the rest counted and summarised in one line."""

    def __init__(self, burst: int = ERRORS_PER_MINUTE, window_s: float = 60.0, max_chars: int = MAX_TRACEBACK_CHARS,
                 clock: Callable[[], float] = time.monotonic, stream: Callable[[], TextIO] = lambda: sys.stderr):
        self.burst, self.window_s, self.max_chars = burst, window_s, max_chars
        self._clock, self._stream = clock, stream
        self._lock = threading.Lock()
        self._window_start = -float("inf")
        self._written = 0
        self._left_out: Counter[str] = Counter()
        self._lines: Counter[str] = Counter()  # warnings written this window, by message
        self._lines_left_out: Counter[str] = Counter()

    # -- the traceback module's print_exc, as Gradio calls it
    def print_exc(self, limit: int | None = None, file: TextIO | None = None, chain: bool = True) -> None:
        """Write the exception being handled, if the budget allows; otherwise count it."""
        exc = sys.exc_info()[1]
        if exc is None:
            return
        summary, allowed = self.admit(type(exc).__name__)
        out = file or self._stream()
        if summary:
            out.write(summary + "\n")
        if allowed:
            out.write(self.shortened("".join(traceback.format_exception(exc, limit=limit, chain=chain))))
            out.flush()

    def __getattr__(self, name: str):
        return getattr(traceback, name)  # the rest of the traceback module, for the modules it stands in

    def install_in(self, modules: Iterable[ModuleType]) -> None:
        """Stand in for the ``traceback`` module that each of ``modules`` imported."""
        for module in modules:
            module.traceback = self

    # -- logging records that carry a traceback
    def as_filter(self) -> logging.Filter:
        """A filter for a logging handler: records with a traceback pass within the budget (with the
        traceback cut to ``max_chars``, and the line about those left out before them); others pass."""
        budget = self

        class _Budgeted(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                if not record.exc_info or record.exc_info[1] is None:
                    if record.levelno < logging.WARNING:
                        return True
                    summary, allowed = budget.admit_line(str(record.msg)[:120])
                    if summary:
                        budget._stream().write(summary + "\n")
                    return allowed
                summary, allowed = budget.admit(type(record.exc_info[1]).__name__)
                if summary:
                    budget._stream().write(summary + "\n")
                if allowed:
                    record.exc_text = budget.shortened(logging.Formatter().formatException(record.exc_info))
                return allowed

        return _Budgeted()

    # -- the budget itself
    def admit(self, kind: str) -> tuple[str | None, bool]:
        """Count one error of exception type ``kind``: (the line about errors left out in the window
        that has just ended, or None; whether this one is written)."""
        with self._lock:
            summary = self._next_window()
            if self.burst and self._written >= self.burst:
                self._left_out[kind] += 1
                return summary, False
            self._written += 1
            return summary, True

    def admit_line(self, message: str) -> tuple[str | None, bool]:
        """Count one warning line with ``message`` (its template): as :meth:`admit`, ``burst`` lines of
        each message a window."""
        with self._lock:
            summary = self._next_window()
            if self.burst and self._lines[message] >= self.burst:
                self._lines_left_out[message] += 1
                return summary, False
            self._lines[message] += 1
            return summary, True

    def _next_window(self) -> str | None:
        """When the window has passed, start the next one; the line about what the last left out, or None."""
        now = self._clock()
        if now - self._window_start < self.window_s:
            return None
        summary = self._left_out_lines()
        self._window_start, self._written, self._left_out = now, 0, Counter()
        self._lines, self._lines_left_out = Counter(), Counter()
        return summary

    def shortened(self, text: str) -> str:
        """``text`` whole, or its first and last halves of ``max_chars`` around a note of what was cut."""
        if len(text) <= self.max_chars:
            return text
        half = self.max_chars // 2
        return f"{text[:half]}\n[... {len(text) - 2 * half} characters not shown ...]\n{text[-half:]}"

    def _left_out_lines(self) -> str | None:
        """The lines about the tracebacks and warnings this window left out, or None."""
        lines = [_left_out_line(self._left_out, "error tracebacks", f"at most {self.burst} are written", str,
                                self.window_s),
                 _left_out_line(self._lines_left_out, "warnings", f"at most {self.burst} of each are written", repr,
                                self.window_s)]
        return "\n".join(line for line in lines if line) or None


def _left_out_line(counts: Counter[str], what: str, rule: str, name: Callable[[str], str], window_s: float) -> str | None:
    """``vmnet: N more WHAT were not written in W s (RULE a window): the five most counted``, or None."""
    total = sum(counts.values())
    if not total:
        return None
    kinds = ", ".join(f"{name(kind)} {n}" for kind, n in counts.most_common(5))
    return f"vmnet: {total} more {what} were not written in {window_s:g} s ({rule} a window): {kinds}"
