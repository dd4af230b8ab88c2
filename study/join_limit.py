"""Per-client join limits of the rater page: at most ``joins_per_client`` new participants from one
client (IP address) within ``joins_window_s`` seconds, per study; past that the client waits until
the window after its last join has passed. In memory, one :class:`JoinLimiter` per server.

Only joins that start a participant count: :func:`study.service.join` gives back the join it
counted when it started none (a full or closed study, a retried join key, a failed save). Before,
an honest rater who was told "full for now ... offered again in about N minutes" and tried again
spent a join each time, and found themselves locked out for the window when the place was free.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def too_many_joins(wait_s: float) -> str:
    """The sentence a client reads when it joined too often."""
    minutes = max(1, math.ceil(wait_s / 60))
    return (f"Too many new sessions were started from your network recently; please try again in about "
            f"{minutes} minute{'s' if minutes != 1 else ''}, or continue the session you already started.")


@dataclass
class JoinLimiter:
    """Join times per (study, limit, client); :meth:`take` counts a join when it is allowed and
    :meth:`give_back` forgets one that started no participant."""

    clock: Callable[[], float] = time.monotonic
    _joins: dict[tuple[int, int, float, str], list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, study_id: int, client: str, per_client: int, window_s: float) -> float:
        """Count a join of ``client`` in study ``study_id`` and return 0, or return the seconds it
        must wait (counting nothing) when it already joined ``per_client`` times within
        ``window_s`` s. ``per_client`` 0 means no limit."""
        if per_client <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            self._forget(now)
            mine = self._joins.setdefault((study_id, per_client, float(window_s), client), [])
            if len(mine) >= per_client:
                return max(0.0, mine[-1] + float(window_s) - now)
            mine.append(now)
            return 0.0

    def give_back(self, study_id: int, client: str, per_client: int, window_s: float) -> None:
        """Forget the latest join :meth:`take` counted for ``client`` (a join that started no participant)."""
        with self._lock:
            key = (study_id, per_client, float(window_s), client)
            mine = self._joins.get(key)
            if mine:
                mine.pop()
                if not mine:
                    del self._joins[key]

    def _forget(self, now: float) -> None:
        """Drop joins older than their window (and clients left with none)."""
        for key in list(self._joins):
            kept = [t for t in self._joins[key] if t > now - key[2]]
            if kept:
                self._joins[key] = kept
            else:
                del self._joins[key]
