"""The web guard in front of everything ``app.py`` serves (threat model: docs/security.md).

One pure-ASGI middleware that

- hides the server's folders: requests are unmasked and text answers masked by a
  :class:`~webguard.masks.PathMask` (:mod:`webguard.rewrite`), so a visitor sees ``/vm-<token>/…``
  where Gradio wrote ``/tmp/gradio/…`` (the trusted admin mounts, ``unmasked_prefixes``, show real
  paths to the logged-in operator);
- serves a file through ``{mount}/gradio_api/file=PATH`` only when the mount's rule allows ``PATH``
  (the page's own outputs and uploads, the study's premuxed stimuli), and answers every other path,
  traversal string or URL with the same 404 that names nothing of the server;
- marks every served file ``nosniff`` and, unless it is audio, video or a raster image, as an
  attachment under ``Content-Security-Policy: sandbox`` (an uploaded HTML/SVG never runs as a page);
- drops a served file's ``Last-Modified`` and ``ETag`` (the time a file was built or last handed
  out, and its size, would tell a study's stimuli apart) and the request's conditional headers that
  would compare against them;
- lets the by-name routes (``/gradio_api/call|call/v2|run|api/NAME``) run only the mount's public
  API (``MountRule.public_api``): Gradio answers them for private events too, by name or by an
  ``fn_index`` in the body (which it prefers to the name), so a body naming any other event is
  refused (``MountRule.public_fn_ids``); the pages themselves call events by ``fn_index`` through
  ``queue/join`` and, for ``queue=False`` events, ``run/predict``, where a visitor's body must name
  one of the page's events (``MountRule.event_fn_ids``: Gradio answered any other index with a
  500, a closed connection and a 5-kB traceback in the server's log);
- refuses a visitor's body holding a Gradio file object whose ``path`` is a URL
  (:func:`webguard.file_objects.names_a_url`): Gradio would download it into the upload folder,
  unbounded, before any handler runs; or, given the ``upload_folder``, one whose ``path`` lies
  outside it (:func:`webguard.file_objects.names_a_server_file`): Gradio would hash and copy that
  server file into the upload folder first (``/dev/zero`` stopped the server for good);
- refuses Gradio routes the pages do not use (``file/``, ``proxy=``, run history, monitoring, deep links, ...),
  and the upload route on mounts whose page takes no upload (``MountRule.uploads``);
- answers same-origin only: Gradio grants any ``Origin`` cross-origin reads *with* the login cookie
  (``Access-Control-Allow-Origin`` echoed, ``-Credentials: true``, the cookie ``SameSite=None``) once
  the ``Host`` is not localhost, so every ``Access-Control-*`` header is dropped and the cookie is
  set ``SameSite=Lax``: another site's script can neither read an answer nor send the admin's cookie;
- throttles the admin login per client and overall (:class:`~webguard.throttle.LoginThrottle`),
  counting each try from when it begins (tries sent at once included), and refuses a password in
  the URL, a login body over ``LOGIN_MAX_BODY`` and a login or logout a page of another origin made;
- ends an admin login after its lifetime (:class:`~webguard.login_ages.LoginAges`: Gradio's tokens
  never expire) and lets no other page frame the admin's mounts;
- bounds what one client may upload within an hour (:class:`~webguard.upload_budget.UploadBudget`);
- bounds what one client makes Gradio keep per session: a visitor event of more than
  ``EVENT_MAX_VALUES`` JSON values is refused, and each client keeps at most a few sessions per page,
  its least recently used forgotten (:class:`~webguard.sessions.SessionLimit`).

It imports no Gradio: ``app.py`` hands it the rules as plain callables.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

from webguard.clients import scope_client
from webguard.file_objects import is_server_file, is_url, paths_in
from webguard.json_body import EMPTY, read_json
from webguard.login_ages import LoginAges
from webguard.masks import PathMask
from webguard.rewrite import (
    FILE_ROUTE,
    MAX_BODY,
    VISITOR_MAX_BODY,
    header,
    masked_send,
    replay,
    unmask_body,
    unmask_scope,
)
from webguard.sessions import TOO_MANY_VALUES, SessionLimit, event_session
from webguard.throttle import LoginThrottle, too_many_tries
from webguard.upload_budget import UploadBudget, counting_receive, too_much_uploaded
from webguard.upload_limits import PART_MIN_BYTES, TOO_MUCH_IN_ONE_UPLOAD, valid_upload_id, watched_upload
from webguard.upload_owners import UploadOwners, recording_send

UPLOAD_ROUTE = "/gradio_api/upload"
PROGRESS_ROUTE = "/gradio_api/upload_progress"
PROGRESS_WAIT_S = 3.0  # how long a progress request may wait for its upload to start (Gradio's own wait)
UPLOAD_ID_KEEP_S = 120.0  # an upload's id is known to the progress route this long after the upload began
MAX_UPLOAD_IDS = 10_000
BLOCKED_ROUTES = ("/gradio_api/file/", "/gradio_api/proxy=", "/gradio_api/run-history", "/gradio_api/runs",
                  "/gradio_api/stream/", "/gradio_api/process_recording", "/gradio_api/vibe-",
                  "/gradio_api/custom_component/", "/monitoring", "/gradio_api/monitoring", "/vibe-",
                  "/gradio_api/undo-vibe-edit", "/gradio_api/component_server", "/gradio_api/dev/",
                  "/gradio_api/profiling", "/gradio_api/deep_link",
                  # neither is used by the pages or gradio_client: startup-events ran the queue's start a
                  # second time on a mounted app (a second processing loop, the job table emptied, the
                  # thread limiter replaced), once per mount by the first visitor to ask; queue/status
                  # told anyone how many events of others were waiting
                  "/gradio_api/startup-events", "/gradio_api/queue/status")
NAMED_ROUTE = re.compile(r"^(?P<prefix>.*?)/gradio_api/(?P<kind>call/v2|call|run|api)/(?P<name>[^/]+)(?:/[^/]*)?/?$")
PAGE_CHANNEL = ("run", "predict")  # the page's own route, by fn_index, for its queue=False events
PAGE_EVENT_ROUTES = ("/gradio_api/queue/join", "/gradio_api/run/predict")  # the page's routes by fn_index
INLINE_TYPES = ("audio/", "video/", "image/png", "image/jpeg", "image/gif", "image/webp")
ASSET_SUFFIXES = (".js", ".mjs", ".css", ".woff", ".woff2", ".ttf", ".png", ".svg", ".ico", ".map", ".webp")
VALIDATORS = (b"last-modified", b"etag")  # dropped from file answers
CONDITIONAL = (b"if-range", b"if-modified-since", b"if-none-match", b"if-match", b"if-unmodified-since")
NOT_FOUND = b'{"detail":"Not found."}'
LOGIN_MAX_BODY = 64 * 1024  # a login form holds a user name and a password
CROSS_SITE_LOGIN = b'{"detail":"Log in and out from this server\'s own page, not from another site\'s."}'
TOO_LARGE = b'{"detail":"The request is too large."}'
NO_URL_FETCH = (b'{"detail":"This server does not fetch files from URLs: download the file and upload it '
                b'(the page\'s file box, or gradio_client\'s handle_file with a local path)."}')
NOT_UPLOADED = (b'{"detail":"That file was not uploaded to this page; upload it with the file box (the server '
                b'only analyses files sent to it, never paths)."}')


@dataclass
class MountRule:
    """One mount's rules: ``prefix`` ("" for ``/``, "/study", ...), which files it may serve
    (``allows(real_path)``), the API names its by-name routes may run (``public_api``) and the
    ``fn_index`` of those events (``public_fn_ids``: a by-name call whose body names another is
    refused), whether its page takes uploads (``uploads``; without, its upload route answers 404),
    and the ``fn_index`` of every event of its page (``event_fn_ids``; ``None``: not checked)."""

    prefix: str
    allows: Callable[[str], bool]
    public_api: frozenset[str] = frozenset()
    uploads: bool = True
    public_fn_ids: frozenset[int] = frozenset()
    event_fn_ids: frozenset[int] | None = None


class WebGuard:
    """ASGI middleware: ``WebGuard(app, rules, mask=PathMask([...]), unmasked_prefixes=("/admin",),
    login_paths=("/admin/login",), logout_paths=("/admin/logout",), login_ages=LoginAges(43200),
    throttle=LoginThrottle(), upload_folder="/tmp/gradio")``."""

    def __init__(self, app, rules: Iterable[MountRule], mask: PathMask | None = None,
                 unmasked_prefixes: Iterable[str] = (), login_paths: Iterable[str] = (),
                 logout_paths: Iterable[str] = (), login_ages: LoginAges | None = None,
                 throttle: LoginThrottle | None = None, upload_budget: UploadBudget | None = None,
                 upload_owners: UploadOwners | None = None, upload_folder: str | None = None,
                 sessions: SessionLimit | None = None):
        self.app = app
        self.rules = sorted(rules, key=lambda r: len(r.prefix), reverse=True)
        self.mask = mask or PathMask([])
        self.unmasked_prefixes = tuple(p.rstrip("/") for p in unmasked_prefixes)
        self.login_paths = {p.rstrip("/") for p in login_paths}
        self.logout_paths = {p.rstrip("/") for p in logout_paths}
        self.login_ages = login_ages
        self.throttle = throttle or LoginThrottle()
        self.upload_budget = upload_budget
        self.upload_owners = upload_owners
        self.upload_folder = upload_folder
        self.sessions = sessions
        self._upload_ids: dict[str, float] = {}  # upload_id of a visitor upload -> when it began

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        return await _ending_refused_streams(self._guarded, scope, receive, send)

    async def _guarded(self, scope, receive, send):
        send = _same_origin_only(send)
        scope = unmask_scope(scope, self.mask)
        if self.login_ages is not None:
            scope = _with_fresh_logins(scope, self.login_ages)
        path = scope.get("path", "")
        if self._trusted(path):
            send = _not_framed(send)
        if any(route in path for route in BLOCKED_ROUTES) or not self._takes_uploads(path):
            return await _answer(send, 404, NOT_FOUND)
        named = NAMED_ROUTE.match(path)
        by_name = bool(named) and (named["kind"], named["name"]) != PAGE_CHANNEL
        if by_name and not self._public(named["prefix"], named["name"]):
            return await _answer(send, 404, NOT_FOUND)
        if FILE_ROUTE in path:
            prefix, _, target = path.partition(FILE_ROUTE)
            rule = self._rule(prefix)
            if rule is None or not _allowed(rule, target) or not self._owns_if_upload(scope, target):
                return await _answer(send, 404, NOT_FOUND)
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() not in CONDITIONAL]}
            return await self.app(scope, receive, _file_headers(send))  # file bytes pass untouched
        if scope.get("method") == "POST" and path.rstrip("/") in self.login_paths:
            return await self._login(scope, receive, send)
        if path.rstrip("/") in self.logout_paths:
            if _from_another_origin(scope):
                return await _answer(send, 403, CROSS_SITE_LOGIN)
            if self.login_ages is not None:
                self.login_ages.logged_out(header(scope["headers"], b"cookie").encode("latin-1"))
        if path.rstrip("/").endswith(PROGRESS_ROUTE) and not self._trusted(path):
            if not await self._upload_started(_upload_id(scope)):
                return await _answer(send, 404, NOT_FOUND)
        elif UPLOAD_ROUTE in path and scope.get("method") == "POST" and not self._trusted(path):
            upload_id = _upload_id(scope)
            if not valid_upload_id(upload_id):
                return await _answer(send, 400, _detail("An upload id is 1 to 32 letters and digits."))
            receive = await self._within_budget(scope, receive, send)
            if receive is None:
                return
            receive, send = self._watched_upload(scope, receive, send)
            if upload_id is not None:
                self._remember_upload_id(upload_id)
        visitor_event = UPLOAD_ROUTE not in path and not self._trusted(path)
        scope, receive = await unmask_body(scope, receive, self.mask, upload_route=UPLOAD_ROUTE in path,
                                           limit=MAX_BODY if UPLOAD_ROUTE in path else VISITOR_MAX_BODY)
        if scope is None:
            return await _answer(send, 413, TOO_LARGE)
        page_event = visitor_event and path.rstrip("/").endswith(PAGE_EVENT_ROUTES)
        if by_name or visitor_event:
            first = await receive()  # the whole body: unmask_body has read it
            body = first.get("body", b"") if first["type"] == "http.request" else b""
            value = read_json(body)  # once, for every check below
            session, too_many = event_session(value) if visitor_event else (None, False)
            if too_many:
                return await _answer(send, 413, _detail(TOO_MANY_VALUES))
            if visitor_event and (refusal := self._file_object_refusal(value)) is not None:
                return await _answer(send, 400, refusal)
            if by_name or page_event:
                prefix = named["prefix"] if by_name else path.partition("/gradio_api/")[0]
                rule = self._rule(prefix)
                allowed = (rule.public_fn_ids if by_name else rule.event_fn_ids) if rule is not None else frozenset()
                if allowed is not None and not _names_event_in(value, allowed, required=page_event):
                    return await _answer(send, 404, NOT_FOUND)
                if session is not None and self.sessions is not None:
                    self.sessions.used(scope_client(scope), prefix, session)
            receive = replay([first], receive)
        if self._trusted(path):
            return await self.app(scope, receive, send)
        if scope.get("method") == "HEAD":  # no body to mask: its length would give the hidden folders' away
            return await self.app(scope, receive, _without_length(send))
        if not path.endswith(ASSET_SUFFIXES) and "/assets/" not in path:
            # answers must come uncompressed to be masked; Gradio's own files keep their compression
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"]}
        send = masked_send(send, self.mask)
        if UPLOAD_ROUTE in path and self.upload_owners is not None:
            client = scope_client(scope)
            send = recording_send(send, lambda paths: [self.upload_owners.record(os.path.normpath(p), client)
                                                       for p in paths])
        return await self.app(scope, receive, send)

    def _owns_if_upload(self, scope, target: str) -> bool:
        """False when ``target`` is another client's recent upload (:mod:`webguard.upload_owners`)."""
        return self.upload_owners is None or self.upload_owners.may_fetch(os.path.normpath(target), scope_client(scope))

    async def _within_budget(self, scope, receive, send):
        """``receive`` counting the upload's bytes against its client's budget, or None (after
        answering 429) when the client has used it up; ``receive`` itself without a budget."""
        if self.upload_budget is None:
            return receive
        client = scope_client(scope)
        wait = self.upload_budget.wait_s(client)
        if wait > 0:
            sentence = too_much_uploaded(self.upload_budget.budget_bytes, self.upload_budget.window_s, wait)
            await _answer(send, 429, sentence.encode(), [(b"retry-after", str(math.ceil(wait)).encode())],
                          content_type=b"text/plain; charset=utf-8")  # the page shows it as "HTTP 429: <text>"
            return None
        return counting_receive(receive, lambda n: self.upload_budget.count(client, n))

    def _file_object_refusal(self, value) -> bytes | None:
        """The answer for a visitor body (its JSON value) whose file objects name a URL or a server
        file, else None."""
        paths = paths_in(value)
        if paths is None or any(is_url(path) for path in paths):
            return NO_URL_FETCH
        if self.upload_folder is not None and any(is_server_file(path, self.upload_folder) for path in paths):
            return NOT_UPLOADED
        return None

    def _watched_upload(self, scope, receive, send):
        """``(receive, send)`` holding a visitor's upload to :mod:`webguard.upload_limits`: at most a
        few parts, no large plain field, and each part (and the request) counted against the client's
        budget as at least ``PART_MIN_BYTES``, once the body has ended."""
        client = scope_client(scope)
        seen = {"bytes": 0, "parts": 0, "charged": False}
        content_type = next((v for k, v in scope.get("headers", []) if k.lower() == b"content-type"), b"")  # the
        # first, as Starlette (and so Gradio) reads it

        def charge_minimum() -> None:
            if self.upload_budget is not None and not seen["charged"]:
                seen["charged"] = True
                short = PART_MIN_BYTES * max(1, seen["parts"]) - seen["bytes"]
                if short > 0:
                    self.upload_budget.count(client, short)

        async def counted():
            message = await receive()
            seen["bytes"] += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                charge_minimum()
            return message

        async def refuse(send_):
            charge_minimum()
            await _answer(send_, 413, _detail(TOO_MUCH_IN_ONE_UPLOAD))

        def on_part() -> None:
            seen["parts"] += 1

        return watched_upload(counted, send, content_type, on_part, refuse)

    def _remember_upload_id(self, upload_id: str) -> None:
        now = time.monotonic()
        if len(self._upload_ids) >= MAX_UPLOAD_IDS:
            self._upload_ids = {k: t for k, t in self._upload_ids.items() if now - t < UPLOAD_ID_KEEP_S}
        if len(self._upload_ids) < MAX_UPLOAD_IDS:
            self._upload_ids[upload_id] = now

    async def _upload_started(self, upload_id: str | None) -> bool:
        """True once a visitor upload with ``upload_id`` has begun (waiting up to ``PROGRESS_WAIT_S``
        for it, as Gradio does): Gradio's progress route keeps an entry for every id it is asked
        about, for good (3,000 requests with 4-kB ids: 30 MB), so it only hears of ids it tracks."""
        if upload_id is None or not valid_upload_id(upload_id):
            return False
        deadline = time.monotonic() + PROGRESS_WAIT_S
        while True:
            began = self._upload_ids.get(upload_id)
            if began is not None and time.monotonic() - began < UPLOAD_ID_KEEP_S:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)

    def _rule(self, prefix: str) -> MountRule | None:
        return next((r for r in self.rules if r.prefix == prefix), None)

    def _public(self, prefix: str, name: str) -> bool:
        rule = self._rule(prefix)
        return rule is not None and unquote(name) in rule.public_api

    def _takes_uploads(self, path: str) -> bool:
        prefix, found, _ = path.partition(UPLOAD_ROUTE)
        rule = self._rule(prefix) if found else None
        return rule is None or rule.uploads

    def _trusted(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.unmasked_prefixes)

    async def _login(self, scope, receive, send):
        if scope.get("query_string"):
            return await _answer(send, 400, _detail("Send the password in the form body, never in the URL."))
        if _from_another_origin(scope):
            return await _answer(send, 403, CROSS_SITE_LOGIN)
        scope, receive = await unmask_body(scope, receive, PathMask([]), limit=LOGIN_MAX_BODY)
        if scope is None:  # Starlette keeps up to 1,000 form fields of 1 MB each in memory
            return await _answer(send, 413, TOO_LARGE)
        client = scope_client(scope)
        wait = self.throttle.wait_s(client)
        if wait > 0:
            return await _answer(send, 429, _detail(too_many_tries(wait)),
                                 [(b"retry-after", str(math.ceil(wait)).encode())])
        # counted as failed from now until it succeeds, with no await since the check: tries sent at
        # once are counted as they begin (60 concurrent wrong passwords were all checked before)
        counted_at = self.throttle.failed(client)
        status: list[int] = []

        async def watch(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])
                if message["status"] == 200 and self.login_ages is not None:
                    message = {**message, "headers": self.login_ages.handed_out(list(message.get("headers", [])))}
            await send(message)

        await self.app(scope, receive, watch)
        if status and status[0] == 200:
            self.throttle.succeeded(client, counted_at)


def _with_fresh_logins(scope, ages: LoginAges):
    """``scope`` whose ``Cookie`` headers hold no login older than ``ages`` allows."""
    headers = [(k, ages.fresh_cookies(v) if k.lower() == b"cookie" else v) for k, v in scope["headers"]]
    return {**scope, "headers": headers}


def _from_another_origin(scope) -> bool:
    """True for a request a browser made from a page of another origin (``Sec-Fetch-Site:
    cross-site`` or ``same-site``: another site, or another port or subdomain of this one): its form
    could send wrong passwords from every visitor's address, or log the admin out. Gradio's own login
    page sends ``same-origin``; a typed-in address ``none``; scripts and gradio_client nothing."""
    return any(k.lower() == b"sec-fetch-site" and v.strip().lower() in (b"cross-site", b"same-site")
               for k, v in scope["headers"])


def _upload_id(scope) -> str | None:
    """The ``upload_id`` of a request's query string (``""`` when given empty or more than once)."""
    values = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True).get("upload_id")
    if values is None:
        return None
    return values[0] if len(values) == 1 else ""


def _refused_mid_stream(exc: BaseException) -> bool:
    """True for the error Starlette raises when an answer already under way (an event stream) is
    refused with an ``HTTPException``: Gradio's ``queue/data`` for an unknown ``session_hash`` and
    ``call/NAME/EVENT_ID`` for an unknown event do that after starting their stream."""
    cause = exc.__cause__
    return isinstance(exc, RuntimeError) and cause is not None and any(
        c.__name__ == "HTTPException" for c in type(cause).__mro__)


async def _ending_refused_streams(app, scope, receive, send) -> None:
    """Run ``app``; when it refuses a stream it has already started (:func:`_refused_mid_stream`),
    end that answer cleanly instead of letting the error reach the server. Before, each such request
    (``GET /gradio_api/queue/data?session_hash=x``, ``GET /gradio_api/call/preview/x``) closed the
    connection mid-answer and wrote an 8-kB traceback to the server's log, so a script could fill it.
    Every other error propagates as before."""
    state = {"started": False, "ended": False}

    async def tracking(message):
        if message["type"] == "http.response.start":
            state["started"] = True
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            state["ended"] = True
        await send(message)

    try:
        await app(scope, receive, tracking)
    except Exception as exc:
        if not (state["started"] and _refused_mid_stream(exc)):
            raise
        if not state["ended"]:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def _names_event_in(value, allowed: frozenset[int], required: bool = False) -> bool:
    """False when a body's JSON value names, by ``fn_index``, an event outside ``allowed``, or
    (``required``: the page's routes, which have no name to go by) names none."""
    if value is not EMPTY and not isinstance(value, dict):
        return True  # not a JSON object: Gradio refuses it before choosing an event (too deep: refused above)
    named = value.get("fn_index") if value is not EMPTY else None
    if named is None:
        return not required
    return type(named) is int and named in allowed  # pydantic would turn "1", 1.0 or true into event 1


def _allowed(rule: MountRule, target: str) -> bool:
    text = unquote(target)
    if not text or "\x00" in text or "://" in text or text.startswith("//"):
        return False
    try:
        real = os.path.realpath(text)
    except (OSError, ValueError):
        return False
    return os.path.isfile(real) and rule.allows(real)


def _edit_start(send, edit: Callable[[list], list]):
    """``send`` with ``edit(headers) -> headers`` applied to the headers that start the answer."""
    async def edited(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": edit(list(message.get("headers", [])))}
        await send(message)

    return edited


def _file_headers(send):
    """``send`` of a served file: no validators, ``nosniff``, and anything but audio, video or a
    raster image as a sandboxed attachment."""
    def edit(headers: list) -> list:
        headers = [(k, v) for k, v in headers if k.lower() not in VALIDATORS]
        ctype = next((v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"), "")
        headers.append((b"x-content-type-options", b"nosniff"))
        if not ctype.startswith(INLINE_TYPES):
            headers = [(k, v) for k, v in headers if k.lower() != b"content-disposition"]
            headers += [(b"content-disposition", b"attachment"),
                        (b"content-security-policy", b"sandbox; default-src 'none'")]
        return headers

    return _edit_start(send, edit)


def _same_origin_only(send):
    """``send`` without ``Access-Control-*`` headers and with ``SameSite=None`` cookies made ``Lax``."""
    return _edit_start(send, lambda headers: [(k, _lax(v) if k.lower() == b"set-cookie" else v)
                                              for k, v in headers if not k.lower().startswith(b"access-control-")])


def _not_framed(send):
    """``send`` of an admin answer, which no other page may show in a frame: a page of the same site
    (another port or subdomain) gets the admin's ``SameSite=Lax`` cookie in its frames and could lay
    its own buttons over the admin's (clickjacking)."""
    return _edit_start(send, lambda headers: [*headers, (b"x-frame-options", b"DENY"),
                                              (b"content-security-policy", b"frame-ancestors 'none'")])


def _lax(cookie: bytes) -> bytes:
    return re.sub(rb"(?i)samesite=none", b"SameSite=Lax", cookie)


def _without_length(send):
    return _edit_start(send, lambda headers: [(k, v) for k, v in headers if k.lower() != b"content-length"])


def _detail(sentence: str) -> bytes:
    return json.dumps({"detail": sentence}).encode()


async def _answer(send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None,
                  content_type: bytes = b"application/json") -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
               (b"x-content-type-options", b"nosniff"), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
