"""How long an admin login lasts.

Gradio's login tokens never expire: a cookie copied once (a shared machine, a proxy log) opened the
admin pages until the server restarted. The guard notes when each token was handed out (the
``Set-Cookie: access-token…`` of a successful login), gives the cookie a ``Max-Age`` so the browser
drops it, and takes an older token out of every request's ``Cookie`` header, so Gradio sees no login.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


def token_in(part: bytes) -> bytes | None:
    """The value of one ``name=value`` part of a ``Cookie`` header whose name, read as Starlette (and
    so Gradio) reads it, starts with ``access-token``; None for any other part. Starlette strips the
    name with ``str.strip`` of its latin-1 text, so a no-break space (``\\xa0``) or ``\\x85`` before it
    counts as blank: ``\\xa0access-token-…=OLD`` reached Gradio as a login past its lifetime or logout."""
    name, equals, value = part.partition(b"=")
    return value if equals and name.decode("latin-1").strip().lower().startswith("access-token") else None


class LoginAges:
    """Tokens handed out, by when: ``handed_out(headers)`` on a login answer, ``fresh_cookies(value)``
    on each request's ``Cookie`` header, ``logged_out(value)`` on a logout; logins older than ``max_age_s``
    seconds are dropped."""

    def __init__(self, max_age_s: float, clock: Callable[[], float] = time.monotonic):
        if max_age_s <= 0:
            raise ValueError(f"A login must last a positive number of seconds, not {max_age_s}.")
        self.max_age_s = float(max_age_s)
        self.clock = clock
        self._since: dict[bytes, float] = {}  # token -> when it was handed out
        self._lock = threading.Lock()

    def handed_out(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """A login answer's headers with each token cookie noted and given a ``Max-Age``."""
        now = self.clock()
        edited = []
        for key, value in headers:
            token = token_in(value.split(b";", 1)[0]) if key.lower() == b"set-cookie" else None
            if token is not None:
                with self._lock:
                    self._since = {t: s for t, s in self._since.items() if now - s <= self.max_age_s}
                    self._since[token] = now
                value = value + b"; Max-Age=" + str(int(self.max_age_s)).encode()
            edited.append((key, value))
        return edited

    def logged_out(self, cookie_header: bytes) -> None:
        """A logout: when ``cookie_header`` holds a live login this guard handed out, end every login
        (Gradio ends the logins of that one mount only); a stranger's logout ends nothing."""
        now = self.clock()
        with self._lock:
            if any(self._live(token_in(part), now) for part in cookie_header.split(b";")):
                self._since = dict.fromkeys(self._since, -math.inf)

    def fresh_cookies(self, cookie_header: bytes) -> bytes:
        """``cookie_header`` keeping only the token cookies of live logins this guard handed out
        (every login passes through it; a token from before a restart Gradio no longer knows either)."""
        now = self.clock()
        parts = [(part, token_in(part)) for part in cookie_header.split(b";")]
        with self._lock:
            kept = [part.strip() for part, token in parts if token is None or self._live(token, now)]
        return b"; ".join(p for p in kept if p)

    def _live(self, token: bytes | None, now: float) -> bool:
        """Whether ``token`` is a login this guard handed out within the lifetime (the lock held)."""
        return token is not None and now - self._since.get(token, -math.inf) <= self.max_age_s
