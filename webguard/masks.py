"""Server folders never reach a visitor: each is shown as an opaque token (docs/security.md).

Gradio names every file it sends by its server path (``FileData.path``, the ``url``
``/gradio_api/file=/tmp/gradio/<hash>/clip.mp4``, the upload route's answer, error messages). The
web guard passes every text answer through :meth:`PathMask.mask`, which replaces each folder the
server must not show (its upload/cache folder, the study's media, the bundle, the cache, the home
folder, ...) by a random token made at start, ``/vm-<12 hex>``. Going the other way, a token is put
back only where Gradio reads a file path and nowhere else: the ``path`` of each file object of a
JSON request body (:meth:`PathMask.unmask_files`) and the path of the file route
``/gradio_api/file=/vm-…/<hash>/clip.mp4`` (:meth:`PathMask.unmask_path`), and there only when the
token starts the path and nothing after it climbs out with ``..``. So ``/gradio_api/file=/vm-…/…``
and a ``FileData`` sent back still name the real file, while a token anywhere else (a track id, a
table, a query string) stays a token: a visitor's own string never carries a real folder into a
handler, which might echo it cut short, glued to other text or normalised beyond what the mask
recognises. A visitor who sends a token gains nothing: it stands for a folder, and every file
argument and file route is checked after unmasking (:mod:`demo.uploads`,
:class:`webguard.guard.WebGuard`).

The mask also hides a folder cut short, as validation messages and ``reprlib`` echo long values
(``'/tmp/gradio/ab...cdef'``, ``'xxxx...dio/ab/x.mp4'``): a leading piece of a folder that ends at
a ``...``/``…`` (wherever it starts), or a trailing piece that starts at one and ends a path
component, at least :data:`CUT_MIN` bytes long, is replaced by that folder's token.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable, Iterable
from urllib.parse import quote

from webguard.file_objects import file_objects

# A folder (or a token) counts only as whole path components, the same rule both ways: not preceded
# by a name character (not inside /x/tmp or ..tmp), not followed by one (not /tmpx, /tmp-1,
# /tmp.bak); a full stop that ends a sentence ("... in /tmp.") still ends the folder.
_NAME = rb"\w\-"
_BEFORE = rb"(?<![%s.])" % _NAME
_AFTER = rb"(?![%s]|\.[%s.])" % (_NAME, _NAME)
TOKEN = re.compile(_BEFORE + rb"/vm-[0-9a-f]{12}" + _AFTER)
_LEADING_TOKEN = re.compile(r"/vm-[0-9a-f]{12}(?=/|$)")
CUT = re.compile(rb"\.\.\.|\xe2\x80\xa6|\\u2026")  # "...", "…" and its JSON escape: where an echo was cut
CUT_MIN = 4  # a cut piece shorter than this ("/tm...") names no folder
_NAME_BYTE = re.compile(rb"[%s.]" % _NAME)


def is_inside(path: str, folder: str | os.PathLike) -> bool:
    """True when ``path`` (already resolved) is ``folder`` (resolved here) or lies under it."""
    root = os.path.realpath(folder)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _new_token() -> str:
    return "/vm-" + secrets.token_hex(6)


def _climbs(rest: str) -> bool:
    """True when ``rest`` (what follows a token) has a ``..`` component: it would leave the folder."""
    return ".." in rest.split("/")


class PathMask:
    """Folders ↔ tokens: ``PathMask(["/tmp/gradio", "/home/me"])``; ``mask(b"...")``, ``unmask(b"...")``.

    Each folder is matched as written, symlinks resolved, JSON-escaped and URL-quoted; the longest
    folder wins (``/tmp/gradio/x`` is the upload folder's token, not ``/tmp``'s). ``/`` and empty
    folders are skipped. ``unmask`` gives back the folder as written (the form the server uses).
    """

    def __init__(self, folders: Iterable[str | os.PathLike], new_token: Callable[[], str] = _new_token):
        self.folders: dict[str, str] = {}  # token -> folder as written
        forms: dict[bytes, str] = {}  # a spelling of a folder -> its token
        for folder in folders:
            written = str(folder).rstrip("/")
            if not written or written in self.folders.values():
                continue
            token = new_token()
            self.folders[token] = written
            for form in {written, os.path.realpath(written).rstrip("/")}:
                if form:
                    for spelling in {form, json.dumps(form)[1:-1], quote(form, safe="/")}:
                        forms.setdefault(spelling.encode(), token)
        self._tokens = {spelling: token.encode() for spelling, token in forms.items()}
        longest_first = sorted(self._tokens, key=len, reverse=True)
        self._pattern = (re.compile(_BEFORE + rb"(?:%s)" % b"|".join(re.escape(s) for s in longest_first) + _AFTER)
                         if longest_first else None)
        # the pieces of each spelling an echo cut short may show, the shortest folder's token first
        self._heads: dict[bytes, bytes] = {}
        self._tails: dict[bytes, bytes] = {}
        for spelling in sorted(self._tokens, key=len):
            for k in range(CUT_MIN, len(spelling) + 1):
                self._heads.setdefault(spelling[:k], self._tokens[spelling])
                self._tails.setdefault(spelling[-k:], self._tokens[spelling])
        self._longest = len(longest_first[0]) if longest_first else 0

    def mask(self, data: bytes) -> bytes:
        """``data`` with every known folder, and every piece of one cut short at a ``...``, replaced
        by its token."""
        if self._pattern is None:
            return data
        if b"..." in data or b"\xe2\x80\xa6" in data or b"\\u2026" in data:
            data = self._mask_cuts(data)
        return self._pattern.sub(lambda m: self._tokens[m.group(0)], data)

    def _mask_cuts(self, data: bytes) -> bytes:
        """The leading piece of a folder just before each cut mark, and the trailing piece just after
        it, replaced by the folder's token. A leading piece counts wherever it starts (a cut echo is
        never sent back as a path, so no round trip asks for whole components); a trailing one must
        end where a path component ends ("...main" in "Wait...mainly" is no folder's end)."""
        pieces, done = [], 0
        for cut in CUT.finditer(data):
            start, end = cut.span()
            head = next((j for j in range(max(done, start - self._longest), start - CUT_MIN + 1)
                         if data[j:start] in self._heads), None)
            if head is not None:
                pieces += [data[done:head], self._heads[data[head:start]]]
                done = start
            pieces.append(data[done:end])
            done = end
            tail = next((k for k in range(min(self._longest, len(data) - end), CUT_MIN - 1, -1)
                         if data[end:end + k] in self._tails and not _NAME_BYTE.match(data, end + k)), None)
            if tail is not None:
                pieces.append(self._tails[data[end:end + tail]])
                done = end + tail
        pieces.append(data[done:])
        return b"".join(pieces)

    def unmask(self, data: bytes) -> bytes:
        """``data`` with every token of this mask replaced by its folder (unknown tokens stay), only
        where the mask itself would match that folder (whole path components). The guard puts
        tokens back only into file paths (:meth:`unmask_path`, :meth:`unmask_files`)."""
        return TOKEN.sub(lambda m: self.folders.get(m.group(0).decode(), m.group(0).decode()).encode(), data)

    def unmask_text(self, text: str) -> str:
        return self.unmask(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")

    def unmask_path(self, path: str) -> str:
        """A file path a visitor sent, with the token that starts it replaced by its folder; unchanged
        when no token of this mask starts it or when it climbs out of the folder with ``..``."""
        found = _LEADING_TOKEN.match(path)
        folder = self.folders.get(found.group(0)) if found else None
        if folder is None or _climbs(path[found.end():]):
            return path
        return folder + path[found.end():]

    def unmask_files(self, body: bytes) -> bytes:
        """A JSON request body with :meth:`unmask_path` applied to the ``path`` of every object Gradio
        reads as a file (``{"path": str, "meta": {"_type": "gradio.FileData"}, ...}``, at any depth)
        and to nothing else; any other body (not JSON, no token) comes back unchanged."""
        if b"vm-" not in body:
            return body
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            return body
        changed = False
        for item in file_objects(value):
            path = self.unmask_path(item["path"])
            changed, item["path"] = changed or path != item["path"], path
        return json.dumps(value).encode() if changed else body
