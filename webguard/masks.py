"""Server folders never reach a visitor: each is shown as an opaque token (docs/security.md).

Gradio names every file it sends by its server path (``FileData.path``, the ``url``
``/gradio_api/file=/tmp/gradio/<hash>/clip.mp4``, the upload route's answer, error messages). The
web guard passes every text answer through :meth:`PathMask.mask`, which replaces each folder the
server must not show (its upload/cache folder, the study's media, the bundle, the cache, the home
folder, ...) by a random token made at start, ``/vm-<12 hex>``; and every request (URL, query,
JSON body) through :meth:`PathMask.unmask`, which puts the folder back before Gradio reads it, so
``/gradio_api/file=/vm-…/<hash>/clip.mp4`` and a ``FileData`` sent back still name the real file.
A visitor who sends a token gains nothing: it stands for a folder, and every file argument and
file route is checked after unmasking (:mod:`demo.uploads`, :class:`webguard.guard.WebGuard`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable, Iterable
from urllib.parse import quote

TOKEN = re.compile(rb"/vm-[0-9a-f]{12}(?![0-9a-f])")
_NAME_CHAR = rb"\w.\-"  # a folder only matches as whole path components: not inside /var/tmpx or /x/tmp


def is_inside(path: str, folder: str | os.PathLike) -> bool:
    """True when ``path`` (already resolved) is ``folder`` (resolved here) or lies under it."""
    root = os.path.realpath(folder)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _new_token() -> str:
    return "/vm-" + secrets.token_hex(6)


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
        self._pattern = (re.compile(rb"(?<![%s])(?:%s)(?![%s])" % (
            _NAME_CHAR, b"|".join(re.escape(s) for s in longest_first), _NAME_CHAR)) if longest_first else None)

    def mask(self, data: bytes) -> bytes:
        """``data`` with every known folder replaced by its token."""
        if self._pattern is None:
            return data
        return self._pattern.sub(lambda m: self._tokens[m.group(0)], data)

    def unmask(self, data: bytes) -> bytes:
        """``data`` with every token of this mask replaced by its folder (unknown tokens stay)."""
        return TOKEN.sub(lambda m: self.folders.get(m.group(0).decode(), m.group(0).decode()).encode(), data)

    def unmask_text(self, text: str) -> str:
        return self.unmask(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")
