"""How many bytes one client may upload within a sliding window (docs/security.md).

The upload folder is kept under its size bound oldest first (:class:`~webguard.janitor.UploadJanitor`),
so a script that uploads fast enough would push every other visitor's upload out before it is
analysed. :class:`UploadBudget` bounds each client (:func:`webguard.clients.client_key`) to
``budget_bytes`` within ``window_s``: the guard counts an upload's bytes as they arrive and refuses
the client's next upload (429) while its count is at the budget. Uploads already running when the
budget is reached finish, so a client can pass it by at most the uploads it had in flight.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

GB = 10**9  # as --upload-max-gb counts
MERGE_S = 1.0  # chunks this close to a client's last entry are added to it


@dataclass
class UploadBudget:
    """Bytes uploaded per client in the last ``window_s`` seconds, against ``budget_bytes``."""

    budget_bytes: int
    window_s: float = 3600.0
    clock: Callable[[], float] = time.monotonic
    _sent: dict[str, list[tuple[float, int]]] = field(default_factory=dict)  # client → [(time, bytes)]
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_s(self, client: str) -> float:
        """Seconds until ``client`` is under its budget again (0: it may upload now)."""
        now = self.clock()
        with self._lock:
            sent = self._recent(client, now)
            over = sum(n for _, n in sent) - self.budget_bytes
            if over < 0:
                return 0.0
            for at, n in sent:  # the oldest bytes leave the window first
                over -= n
                if over < 0:
                    return max(0.0, at + self.window_s - now)
            return self.window_s

    def count(self, client: str, n_bytes: int) -> None:
        """Add ``n_bytes`` that ``client`` has just sent (an upload arrives in many small chunks: those
        within :data:`MERGE_S` of the client's last entry join it, so a client keeps one entry a second)."""
        if n_bytes <= 0:
            return
        now = self.clock()
        with self._lock:
            sent = self._sent.setdefault(client, [])
            if sent and now - sent[-1][0] < MERGE_S:
                sent[-1] = (sent[-1][0], sent[-1][1] + n_bytes)
            else:
                sent.append((now, n_bytes))

    def _recent(self, client: str, now: float) -> list[tuple[float, int]]:
        cutoff = now - self.window_s
        for other in list(self._sent):  # forget every client's old bytes, so the table stays small
            kept = [entry for entry in self._sent[other] if entry[0] > cutoff]
            if kept:
                self._sent[other] = kept
            else:
                del self._sent[other]
        return self._sent.get(client, [])


def counting_receive(receive, on_bytes: Callable[[int], None]):
    """An ASGI ``receive`` that reports the size of each request body chunk to ``on_bytes`` as it arrives."""

    async def counted():
        message = await receive()
        if message.get("type") == "http.request":
            on_bytes(len(message.get("body", b"")))
        return message

    return counted


def too_much_uploaded(budget_bytes: int, window_s: float, wait_s: float) -> str:
    """The sentence a client reads when it has used its upload budget."""
    minutes = max(1, math.ceil(wait_s / 60))
    return (f"Your network has uploaded {_size(budget_bytes)} to this server in the last "
            f"{_duration(window_s)}, the most one visitor may; wait about {minutes} minute{'s' if minutes != 1 else ''}, "
            "then upload again.")


def _size(n_bytes: int) -> str:
    return f"{n_bytes / GB:g} GB" if n_bytes >= GB else f"{n_bytes / 10**6:g} MB"


def _duration(seconds: float) -> str:
    return "hour" if seconds == 3600 else f"{seconds / 60:g} minutes"
