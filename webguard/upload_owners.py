"""Whose upload is it: a visitor may fetch a file from the upload route's answers only if it was theirs.

Gradio keeps uploads in a content-addressed folder (``<upload dir>/<hash of the bytes>/<name>``), the
same for every visitor. A stranger who holds a file and guesses the name another visitor sent it
under could fetch ``file=<that folder>/<name>`` and learn from a 200 that someone had sent it (a
404 when nobody had; found by an audit, 2026-12-07). The guard records, from each upload answer, the
paths it handed to which client (:func:`recording_send`); the file route then serves such a path only
to a client it was handed to (:meth:`UploadOwners.may_fetch`). Sending the same bytes under the same
name makes the path one's own, so the answer never depends on what others sent. Files that were
never in an upload answer (outputs, catalog media) keep their mount's own rule.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class UploadOwners:
    """``path -> {client: when}`` for the upload answers of the last ``max_age_s`` seconds (uploads are
    removed after that: ``--upload-max-age-s``), at most ``max_paths`` paths (the oldest forgotten
    first: a forgotten path falls back to its mount's rule)."""

    def __init__(self, max_age_s: float, max_paths: int = 200_000, clock: Callable[[], float] = time.monotonic):
        self.max_age_s = float(max_age_s)
        self.max_paths = int(max_paths)
        self.clock = clock
        self._owners: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, path: str, client: str) -> None:
        """``client`` was handed ``path`` by the upload route now."""
        now = self.clock()
        with self._lock:
            owners = self._owners.pop(path, {})
            owners[client] = now
            self._owners[path] = owners  # most recent last
            self._forget_old(now)

    def may_fetch(self, path: str, client: str) -> bool:
        """False only when ``path`` is a recent upload handed to other clients and not to ``client``."""
        with self._lock:
            self._forget_old(self.clock())
            owners = self._owners.get(path)
            return owners is None or client in owners

    def _forget_old(self, now: float) -> None:
        while self._owners:
            path, owners = next(iter(self._owners.items()))
            if len(self._owners) <= self.max_paths and now - max(owners.values()) <= self.max_age_s:
                break
            del self._owners[path]


def recording_send(send, on_paths: Callable[[list[str]], None]):
    """``send`` that also hands the paths of a successful upload answer (Gradio's JSON list of the
    stored files' paths, before any masking) to ``on_paths``."""
    status, chunks = 0, []

    async def recording(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and status == 200:
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                try:
                    paths = json.loads(b"".join(chunks))
                except ValueError:
                    paths = None
                if isinstance(paths, list):
                    on_paths([p for p in paths if isinstance(p, str)])
        await send(message)

    return recording
