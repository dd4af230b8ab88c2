"""What one client can make the server keep in Gradio's per-session state (docs/security.md).

Gradio keeps a state per ``session_hash`` of each page (``blocks.state_holder``, up to 10,000): a copy
of the page's component config (77-95 kB) and every input and output value of the session's events,
until the page's 10,000 newer sessions push it out. The hash is the visitor's choice, so a script
sending each event under a fresh one had the server keep a new state per request: 5 ms each, and
JSON parses into far larger Python objects than its bytes, so a 1-MB body of empty lists
(``[[],[],…]``) was kept as 24-26 MB (measured 2026-12-08: 1.65 GB a minute from one address).

- :class:`SessionLimit`: each client keeps at most ``per_client`` sessions per page; using one more
  makes the page forget that client's least recently used one (``forget(prefix, session_hash)``,
  given by ``app.py``). Nothing is refused: an honest tab uses one session.
- :func:`event_session`: an event body of more than ``EVENT_MAX_VALUES`` JSON values is refused.
  The pages' largest honest event, a 100-row results table sent back to the track picker, holds
  about 1,100.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from webguard.json_body import EMPTY, NOT_JSON, TOO_DEEP

SESSIONS_PER_CLIENT = 16  # sessions (tabs, reloads) one client keeps per page
EVENT_MAX_VALUES = 20_000  # JSON values (objects, lists, strings, numbers, ...) in one visitor event's body:
# about 1.5 MB kept per session at most (empty lists), 18 times the pages' largest honest event
MAX_CLIENTS = 20_000  # clients remembered; beyond, the least recently seen is dropped (its sessions stay
# to Gradio's own capacity)
TOO_MANY_VALUES = f"An event of this page carries at most {EVENT_MAX_VALUES:,} values; this one carries more."


class SessionLimit:
    """``used(client, prefix, session_hash)`` for every visitor event: at most ``per_client``
    sessions per client and page are kept, the least recently used forgotten by ``forget``."""

    def __init__(self, per_client: int, forget: Callable[[str, str], None]):
        self.per_client = per_client
        self.forget = forget
        self._sessions: OrderedDict[tuple[str, str], OrderedDict[str, None]] = OrderedDict()
        self._lock = threading.Lock()

    def used(self, client: str, prefix: str, session_hash: str) -> None:
        with self._lock:
            forgotten = self._note(client, prefix, session_hash)
        for old in forgotten:
            self.forget(prefix, old)

    def _note(self, client: str, prefix: str, session_hash: str) -> list[str]:
        key = (client, prefix)
        sessions = self._sessions.pop(key, None) or OrderedDict()
        self._sessions[key] = sessions  # the most recently seen client last
        sessions[session_hash] = None
        sessions.move_to_end(session_hash)
        forgotten = []
        while len(sessions) > self.per_client:
            forgotten.append(sessions.popitem(last=False)[0])
        while len(self._sessions) > MAX_CLIENTS:
            self._sessions.popitem(last=False)
        return forgotten


def event_session(value: Any) -> tuple[str | None, bool]:
    """The ``session_hash`` an event body's JSON value (:func:`webguard.json_body.read_json`) names
    (None: none, or no JSON), and whether it holds more than ``EVENT_MAX_VALUES`` JSON values (False
    for no JSON: Gradio refuses it before keeping anything)."""
    if value is EMPTY or value is NOT_JSON or value is TOO_DEEP:
        return None, False
    named = value.get("session_hash") if isinstance(value, dict) else None
    return (named if isinstance(named, str) else None), count_values(value, EVENT_MAX_VALUES + 1) > EVENT_MAX_VALUES


def count_values(value, stop_at: int) -> int:
    """How many JSON values ``value`` holds, itself included, counted up to ``stop_at``
    (iteratively: a body may nest lists 100,000 deep)."""
    count, pending = 0, [value]
    while pending and count < stop_at:
        item = pending.pop()
        count += 1
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return count
