"""The admin login's throttle: per client and overall, with a doubling wait (docs/security.md)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoginThrottle:
    """Failed logins per client and overall, with a lockout that doubles per failure past ``free_tries``.

    A client with n ≥ ``free_tries`` recent failures waits ``base_s * 2**(n - free_tries)`` s (at most
    ``max_s``) after its last one; when all clients together fail ``global_tries`` times within
    ``window_s`` s, every client waits until that window has passed. Failures older than ``window_s``
    are forgotten.
    """

    free_tries: int = 5
    base_s: float = 1.0
    max_s: float = 300.0
    global_tries: int = 50
    window_s: float = 600.0
    clock: Callable[[], float] = time.monotonic
    _fails: dict[str, list[float]] = field(default_factory=dict)
    _all: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_s(self, client: str) -> float:
        """Seconds ``client`` must wait before its next try (0: may try now)."""
        now = self.clock()
        with self._lock:
            self._forget(now)
            waits = [0.0]
            mine = self._fails.get(client, [])
            if len(mine) >= self.free_tries:
                waits.append(mine[-1] + min(self.max_s, self.base_s * 2 ** (len(mine) - self.free_tries)) - now)
            if len(self._all) >= self.global_tries:
                waits.append(self._all[-self.global_tries] + self.window_s - now)
            return max(waits)

    def failed(self, client: str) -> float:
        """Count a failure of ``client`` now; returns its time (for :meth:`succeeded`)."""
        now = self.clock()
        with self._lock:
            self._fails.setdefault(client, []).append(now)
            self._all.append(now)
        return now

    def succeeded(self, client: str, counted_at: float | None = None) -> None:
        """Forget ``client``'s failures and (``counted_at``: a try counted as failed when it began)
        take that one back from the overall count."""
        with self._lock:
            self._fails.pop(client, None)
            if counted_at in self._all:
                self._all.remove(counted_at)

    def _forget(self, now: float) -> None:
        cutoff = now - self.window_s
        self._all = [t for t in self._all if t > cutoff]
        for client in list(self._fails):
            kept = [t for t in self._fails[client] if t > cutoff]
            if kept:
                self._fails[client] = kept
            else:
                del self._fails[client]


def too_many_tries(wait_s: float) -> str:
    return f"Too many wrong passwords; wait {math.ceil(wait_s)} s before trying again."
