"""What one visitor upload request may hold, checked as its bytes stream past (docs/security.md).

Gradio's upload route bounds each *file* part by ``--max-upload-mb`` and accepts up to 1,000 files
and 1,000 plain fields a request, but keeps a plain field whole in memory, unbounded: a 100-MB
field cost the server 307 MB of memory with ``--max-upload-mb 5``, and 1,000 empty files a request
made 20,000 files from 2.3 MB of body (20 requests, about 0.23 ms of server CPU and 0.9 kB of
memory each until they age out), so the upload budget's bytes bounded neither. The pages (and
gradio_client) send one file per request and no field. So a visitor's upload request may hold at
most :data:`MAX_PARTS` parts, a plain field at most :data:`MAX_FIELD_BYTES`, and each part and the
request itself count at least :data:`PART_MIN_BYTES` against the client's upload budget.

The body is read with the same parser Gradio uses (``python_multipart``, same boundary and
options), so what is counted here is what Gradio stores. When a limit is passed, the body handed on
ends there (Gradio keeps only the parts finished before) and the answer is replaced by ``413``.
"""

from __future__ import annotations

from collections.abc import Callable

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

MAX_PARTS = 4  # the pages and gradio_client send 1
MAX_FIELD_BYTES = 64 * 1024  # the pages send no plain field
PART_MIN_BYTES = 10**6  # each part, and each request, counts at least this against the upload budget
UPLOAD_ID_CHARS = 32  # the page's upload ids are 13 base-36 characters
TOO_MUCH_IN_ONE_UPLOAD = (f"An upload may hold at most {MAX_PARTS} files and no form field over "
                          f"{MAX_FIELD_BYTES // 1024} kB; send each file in its own upload.")


class UploadWatch:
    """Follows one multipart body: ``feed(chunk)`` returns False once it passed a limit (then
    ``refused`` is True); ``on_part()`` is called at the start of every part."""

    def __init__(self, content_type: bytes, on_part: Callable[[], None]):
        self.refused = False
        self.parts = 0
        self._on_part = on_part
        self._field_bytes = 0
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._is_file = False
        _, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        self._parser = None if not boundary else MultipartParser(boundary, {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value_cb, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data})

    def feed(self, chunk: bytes) -> bool:
        if self._parser is None or self.refused or not chunk:
            return not self.refused
        try:
            self._parser.write(chunk)
        except MultipartParseError:
            self._parser = None  # Gradio refuses the same body with a 400
        return not self.refused

    def _part_begin(self) -> None:
        if self.refused:  # the rest of the chunk: Gradio never sees it, so it is not counted
            return
        self.parts += 1
        self._field_bytes, self._disposition, self._is_file = 0, b"", False
        self._on_part()
        if self.parts > MAX_PARTS:
            self.refused = True

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_cb(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._is_file = b"filename" in options  # as Gradio tells a file from a field

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._is_file:
            self._field_bytes += end - start
            if self._field_bytes > MAX_FIELD_BYTES:
                self.refused = True


def watched_upload(receive, send, content_type: bytes, on_part: Callable[[], None], refusal: Callable):
    """``(receive, send)`` for Gradio's upload route: the body ends where an :class:`UploadWatch`
    limit is passed, and then Gradio's answer is replaced by ``await refusal(send)``."""
    watch = UploadWatch(content_type, on_part)
    state = {"ended": False, "answered": False}

    async def watched_receive():
        if state["ended"]:
            return {"type": "http.request", "body": b"", "more_body": False}
        message = await receive()
        if message["type"] == "http.request" and not watch.feed(message.get("body", b"")):
            state["ended"] = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return message

    async def watched_send(message):
        if not watch.refused:
            return await send(message)
        if not state["answered"]:
            state["answered"] = True
            await refusal(send)

    return watched_receive, watched_send


def valid_upload_id(query: str | None) -> bool:
    """True for an ``upload_id`` the page could have made (or none): at most
    :data:`UPLOAD_ID_CHARS` letters and digits."""
    return query is None or (0 < len(query) <= UPLOAD_ID_CHARS and query.isascii() and query.isalnum())
