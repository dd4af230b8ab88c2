"""The web guard in front of everything ``app.py`` serves (threat model: docs/security.md).

One pure-ASGI middleware (streaming responses pass untouched) that

- serves a file through ``{mount}/gradio_api/file=PATH`` only when the mount's rule allows ``PATH``
  (the page's own outputs and uploads, the study's premuxed stimuli), and answers every other path,
  traversal string or URL with the same 404 that names nothing of the server;
- marks every served file ``nosniff`` and, unless it is audio, video or a raster image, as an
  attachment under ``Content-Security-Policy: sandbox`` (an uploaded HTML/SVG never runs as a page);
- refuses Gradio routes the pages do not use (``file/``, ``proxy=``, run history, monitoring, ...);
- throttles the admin login per client and overall (:class:`LoginThrottle`) and refuses a
  password in the URL.

It imports no Gradio: ``app.py`` hands it the rules as plain callables. :class:`UploadJanitor`
removes visitor uploads and Gradio's temp files once they are old, and keeps the folder under a
size bound.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

FILE_ROUTE = "/gradio_api/file="
BLOCKED_ROUTES = ("/gradio_api/file/", "/gradio_api/proxy=", "/gradio_api/run-history", "/gradio_api/runs",
                  "/gradio_api/stream/", "/gradio_api/process_recording", "/gradio_api/vibe-",
                  "/gradio_api/custom_component/", "/monitoring", "/gradio_api/monitoring", "/vibe-")
INLINE_TYPES = ("audio/", "video/", "image/png", "image/jpeg", "image/gif", "image/webp")
NOT_FOUND = b'{"detail":"Not found."}'


@dataclass
class MountRule:
    """Which files one mount may serve: ``prefix`` ("" for ``/``, "/study", ...) and ``allows(real_path)``."""

    prefix: str
    allows: Callable[[str], bool]


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

    def failed(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            self._fails.setdefault(client, []).append(now)
            self._all.append(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._fails.pop(client, None)

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


class WebGuard:
    """ASGI middleware: ``WebGuard(app, rules, login_paths=("/admin/login",), throttle=LoginThrottle())``."""

    def __init__(self, app, rules: Iterable[MountRule], login_paths: Iterable[str] = (),
                 throttle: LoginThrottle | None = None):
        self.app = app
        self.rules = sorted(rules, key=lambda r: len(r.prefix), reverse=True)
        self.login_paths = {p.rstrip("/") for p in login_paths}
        self.throttle = throttle or LoginThrottle()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if any(route in path for route in BLOCKED_ROUTES):
            return await _answer(send, 404, NOT_FOUND)
        if FILE_ROUTE in path:
            prefix, _, target = path.partition(FILE_ROUTE)
            rule = next((r for r in self.rules if r.prefix == prefix), None)
            if rule is None or not _allowed(rule, target):
                return await _answer(send, 404, NOT_FOUND)
            return await self.app(scope, receive, _file_headers(send))
        if scope.get("method") == "POST" and path.rstrip("/") in self.login_paths:
            return await self._login(scope, receive, send)
        return await self.app(scope, receive, send)

    async def _login(self, scope, receive, send):
        if scope.get("query_string"):
            return await _answer(send, 400, _detail("Send the password in the form body, never in the URL."))
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.throttle.wait_s(client)
        if wait > 0:
            return await _answer(send, 429, _detail(too_many_tries(wait)),
                                 [(b"retry-after", str(math.ceil(wait)).encode())])
        status: list[int] = []

        async def watch(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, watch)
        if status and status[0] == 200:
            self.throttle.succeeded(client)
        elif status and status[0] in (400, 401, 403):
            self.throttle.failed(client)


def _allowed(rule: MountRule, target: str) -> bool:
    text = unquote(target)
    if not text or "\x00" in text or "://" in text or text.startswith("//"):
        return False
    try:
        real = os.path.realpath(text)
    except (OSError, ValueError):
        return False
    return os.path.isfile(real) and rule.allows(real)


def _file_headers(send):
    async def with_headers(message):
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", [])]
            ctype = next((v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"), "")
            headers.append((b"x-content-type-options", b"nosniff"))
            if not ctype.startswith(INLINE_TYPES):
                headers = [(k, v) for k, v in headers if k.lower() != b"content-disposition"]
                headers += [(b"content-disposition", b"attachment"),
                            (b"content-security-policy", b"sandbox; default-src 'none'")]
            message = {**message, "headers": headers}
        await send(message)

    return with_headers


def _detail(sentence: str) -> bytes:
    return json.dumps({"detail": sentence}).encode()


async def _answer(send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"x-content-type-options", b"nosniff"), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def is_inside(path: str, folder: str | os.PathLike) -> bool:
    """True when ``path`` (already resolved) is ``folder`` (resolved here) or lies under it."""
    root = os.path.realpath(folder)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class UploadJanitor:
    """Removes files under ``folder`` older than ``max_age_s`` and, while the folder holds more than
    ``max_bytes``, the oldest ones; every ``period_s`` s in a daemon thread (``start()``), or once by
    ``sweep()``. ``keep``: files the pages reference from their start (a figure) are never removed.
    ``forget(paths)`` is called with what was removed (to drop Gradio's records of them)."""

    def __init__(self, folder: str | os.PathLike, max_age_s: float, max_bytes: int, period_s: float = 60.0,
                 forget: Callable[[set[str]], None] | None = None, keep: Iterable[str] = ()):
        self.folder, self.max_age_s, self.max_bytes, self.period_s = str(folder), max_age_s, max_bytes, period_s
        self.forget = forget or (lambda removed: None)
        self.keep = {os.path.realpath(p) for p in keep}
        self._stop = threading.Event()

    def sweep(self, now: float | None = None) -> set[str]:
        """Remove what is too old or over the size bound; returns the removed file paths."""
        now = time.time() if now is None else now
        files = []
        for root, _dirs, names in os.walk(self.folder):
            for name in names:
                path = os.path.join(root, name)
                if os.path.realpath(path) in self.keep:
                    continue
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                files.append((st.st_mtime, st.st_size, path))
        files.sort()
        total = sum(size for _, size, _ in files)
        removed: set[str] = set()
        for mtime, size, path in files:
            if now - mtime <= self.max_age_s and total <= self.max_bytes:
                break
            try:
                os.unlink(path)
            except OSError:
                continue
            removed.add(path)
            total -= size
        self._remove_empty_dirs()
        if removed:
            self.forget(removed)
        return removed

    def _remove_empty_dirs(self, min_age_s: float = 60.0) -> None:
        """Empty folders left behind (not ones a running upload made in the last ``min_age_s`` s)."""
        for root, dirs, names in os.walk(self.folder, topdown=False):
            if root != self.folder and not dirs and not names:
                try:
                    if time.time() - os.lstat(root).st_mtime > min_age_s:
                        shutil.rmtree(root, ignore_errors=True)
                except OSError:
                    continue

    def start(self) -> UploadJanitor:
        threading.Thread(target=self._run, name="vmnet-upload-janitor", daemon=True).start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.sweep()
            except Exception:  # a failed sweep must not stop the next one
                pass

    def stop(self) -> None:
        self._stop.set()
