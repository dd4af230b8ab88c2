"""ASGI plumbing for :class:`~webguard.masks.PathMask`: requests unmasked before the app reads them,
text answers masked before the visitor reads them.

- ``unmask_scope``: the path of the file route (``/gradio_api/file=/vm-…/x.mp4`` → the real path);
  nothing else of the URL (a token in another route or in the query stays a token);
- ``unmask_body``: every request body but an upload to the upload route, read whole (at most
  ``MAX_BODY`` bytes; a larger one is answered 413), the ``path`` of each Gradio file object in it
  unmasked (:meth:`~webguard.masks.PathMask.unmask_files`: nothing else), handed on with its new
  ``content-length``. Whatever its declared type: FastAPI reads a body as JSON without a type and
  under any ``application/*+json``, reads a form or multipart body whole on any route, and its
  422 answer echoes what it read, so a cap by type alone is stepped around;
- ``masked_send``: JSON, HTML and plain-text answers are held whole, masked and sent with their new
  ``content-length``; an event stream (``text/event-stream``, Gradio's queue) is masked line by line
  as it flows, a partial line held until its end arrives; everything else (files, scripts, images)
  and anything already compressed passes byte for byte. Header values are masked too.
"""

from __future__ import annotations

from urllib.parse import quote

from webguard.masks import PathMask

FILE_ROUTE = "/gradio_api/file="
MAX_BODY = 16 * 1024 * 1024
# what a visitor's request may send but for an upload (``run/predict``, ``queue/join``, ``call/…``):
# Gradio parses an event's inputs on its event loop (a 16-MB results table held every visitor's
# answers for 4 s, by either route); the pages' own events send at most a 100-row results table,
# tens of kilobytes. The admin's mounts take no more: their events send a study name or a folder, and
# a body is read before Gradio's login check (a stranger's 15-MB body to /admin was held, then a 401).
VISITOR_MAX_BODY = 1024 * 1024
MASKED_TYPES = ("application/json", "text/html", "text/plain", "text/event-stream")
STREAMED_BODY_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")  # uploads


def header(headers, name: bytes) -> str:
    return next((v.decode("latin-1") for k, v in headers if k.lower() == name), "")


def _with_length(headers, length: int) -> list:
    return [(k, v) for k, v in headers if k.lower() != b"content-length"] + [(b"content-length", str(length).encode())]


def unmask_scope(scope: dict, mask: PathMask) -> dict:
    """``scope`` with the file route's path unmasked (:meth:`~webguard.masks.PathMask.unmask_path`)."""
    prefix, found, target = scope.get("path", "").partition(FILE_ROUTE)
    if not found or target == (real := mask.unmask_path(target)):
        return scope
    path = prefix + FILE_ROUTE + real
    return {**scope, "path": path, "raw_path": quote(path, safe="/:=@!$&'()*+,;~").encode()}


async def unmask_body(scope: dict, receive, mask: PathMask, upload_route: bool = False, limit: int = MAX_BODY):
    """``(scope, receive)`` with the body unmasked, or ``(None, None)`` when it exceeds ``limit`` bytes.
    On an ``upload_route`` a multipart or form body streams through untouched (Gradio bounds it by
    ``max_file_size``)."""
    if upload_route and header(scope.get("headers", []), b"content-type").lower().startswith(STREAMED_BODY_TYPES):
        return scope, receive
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return scope, replay([message], receive)
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return None, None
        if not message.get("more_body", False):
            break
    if not size:
        return scope, replay([{"type": "http.request", "body": b"", "more_body": False}], receive)
    body = mask.unmask_files(b"".join(chunks))
    scope = {**scope, "headers": _with_length(scope.get("headers", []), len(body))}
    return scope, replay([{"type": "http.request", "body": body, "more_body": False}], receive)


def replay(messages: list, receive):
    async def replayed():
        return messages.pop(0) if messages else await receive()
    return replayed


def masked_send(send, mask: PathMask):
    """``send`` that masks text answers (see the module's docstring)."""
    state = {"mode": "pass", "start": None, "held": b""}

    async def wrapped(message):
        kind = message["type"]
        if kind == "http.response.start":
            headers = [(k, mask.mask(v)) for k, v in message.get("headers", [])]
            ctype = header(headers, b"content-type")
            if header(headers, b"content-encoding") or not ctype.startswith(MASKED_TYPES):
                state["mode"] = "pass"
                return await send({**message, "headers": headers})
            if ctype.startswith("text/event-stream"):
                state["mode"] = "lines"
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                return await send({**message, "headers": headers})
            state["mode"], state["start"] = "whole", {**message, "headers": headers}
            return None
        if kind != "http.response.body" or state["mode"] == "pass":
            return await send(message)
        more = message.get("more_body", False)
        held = state["held"] + message.get("body", b"")
        if state["mode"] == "lines":
            cut = held.rfind(b"\n") + 1 if more else len(held)
            state["held"] = held[cut:]
            if cut or not more:
                await send({"type": "http.response.body", "body": mask.mask(held[:cut]), "more_body": more})
            return None
        state["held"] = held
        if not more:
            body = mask.mask(held)
            start = state["start"]
            await send({**start, "headers": _with_length(start["headers"], len(body))})
            await send({"type": "http.response.body", "body": body, "more_body": False})
        return None

    return wrapped
