"""Per-client join limits of the rater page: at most ``joins_per_client`` new participants from one
client (IP address) within ``joins_window_s`` seconds, per study; past that the client waits until
the window after its last join has passed. In memory, one :class:`JoinLimiter` per server (the
counting is :class:`webguard.throttle.LoginThrottle`'s, with every join counted as a try).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from webguard.throttle import LoginThrottle

NO_GLOBAL_LIMIT = 2**62  # the join limit is per client only


def too_many_joins(wait_s: float) -> str:
    """The sentence a client reads when it joined too often."""
    minutes = max(1, math.ceil(wait_s / 60))
    return (f"Too many new sessions were started from your network recently; please try again in about "
            f"{minutes} minute{'s' if minutes != 1 else ''}, or continue the session you already started.")


@dataclass
class JoinLimiter:
    """Join counts per (study, client); :meth:`take` counts a join when it is allowed."""

    clock: Callable[[], float] = time.monotonic
    _throttles: dict[tuple[int, int, float], LoginThrottle] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, study_id: int, client: str, per_client: int, window_s: float) -> float:
        """Count a join of ``client`` in study ``study_id`` and return 0, or return the seconds it
        must wait (counting nothing) when it already joined ``per_client`` times within
        ``window_s`` s. ``per_client`` 0 means no limit."""
        if per_client <= 0:
            return 0.0
        with self._lock:
            key = (study_id, per_client, float(window_s))
            throttle = self._throttles.get(key)
            if throttle is None:
                throttle = self._throttles[key] = LoginThrottle(
                    free_tries=per_client, base_s=window_s, max_s=window_s, global_tries=NO_GLOBAL_LIMIT,
                    window_s=window_s, clock=self.clock)
            wait = throttle.wait_s(client)
            if wait <= 0:
                throttle.failed(client)  # LoginThrottle's word for "one more try"
            return max(0.0, wait)
