"""Real listening: how soon a vote may come after its trial was served, the listening times a page
reports, and the screening rule over them (used by ``study.service`` and ``study.stats``).

Server side a vote is refused sooner than ``min_listen_fraction`` × (length of A + length of B)
after the trial's media were first handed out; the page reports the seconds it actually played
of each soundtrack (seeking forward is not listening), and screening excludes raters whose played
time, or median response time, falls below the study's thresholds.
"""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime
from typing import Any

MAX_LISTENED_S = 24 * 3600.0  # a report above a day is not a listening time


def min_answer_s(duration_a_s: float, duration_b_s: float, fraction: float) -> float:
    """Seconds that must pass between serving a trial and accepting its vote."""
    return max(0.0, float(fraction) * (float(duration_a_s) + float(duration_b_s)))


def seconds_left(served_at: datetime, now: datetime, needed_s: float) -> float:
    """Seconds still to wait at ``now`` for a trial served at ``served_at`` (naive times are UTC)."""
    if served_at.tzinfo is None:
        served_at = served_at.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return max(0.0, needed_s - (now - served_at).total_seconds())


def too_soon(wait_s: float) -> str:
    """The sentence a rater reads when the answer came before both soundtracks could be played."""
    return (f"Please listen to both soundtracks before answering; your answer can be saved in "
            f"{max(1, math.ceil(wait_s))} s.")


def checked_listened(value: Any, side: str) -> float | None:
    """A reported listening time in seconds (None when not reported); refuses anything but a finite
    number from 0 to a day with ``ValueError`` (the caller turns it into a refusal)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0 <= value <= MAX_LISTENED_S:
        raise ValueError(f"The listening time of soundtrack {side} must be a number of seconds from 0 to "
                         f"{MAX_LISTENED_S:.0f}, or left empty.")
    return float(value)


def listened_fraction(votes: list[dict[str, Any]]) -> float | None:
    """Seconds played over seconds there were to play, summed over the votes that report both
    sides' listening times and their clip's length (``listened_a_s``, ``listened_b_s``,
    ``duration_s``); None when none does."""
    played = needed = 0.0
    for v in votes:
        a, b, duration = v.get("listened_a_s"), v.get("listened_b_s"), v.get("duration_s")
        if _number(a) and _number(b) and _number(duration) and duration > 0:
            played += min(a, duration) + min(b, duration)  # a looped replay does not make up for a skip
            needed += 2 * duration
    return played / needed if needed else None


def median_response_ms(votes: list[dict[str, Any]]) -> float | None:
    """The median ``response_ms`` over the votes that have one (None when none has)."""
    times = [float(v["response_ms"]) for v in votes if _number(v.get("response_ms"))]
    return statistics.median(times) if times else None


def listening_reasons(votes: list[dict[str, Any]], min_listened_fraction: float,
                      min_response_ms: float) -> list[str]:
    """Why one rater's votes fail the listening screening (empty: they pass)."""
    reasons = []
    fraction = listened_fraction(votes)
    if fraction is not None and fraction < min_listened_fraction:
        reasons.append(f"played {100 * fraction:.0f}% of the soundtracks (below {100 * min_listened_fraction:.0f}%)")
    median = median_response_ms(votes)
    if median is not None and min_response_ms and median < min_response_ms:
        reasons.append(f"median response time {median:.0f} ms (below {min_response_ms:.0f} ms)")
    return reasons


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
