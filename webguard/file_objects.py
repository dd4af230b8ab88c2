"""Gradio's file objects in a JSON request body: where the guard puts a folder back
(:meth:`webguard.masks.PathMask.unmask_files`) and where it refuses a URL (:func:`names_a_url`) or a
server file (:func:`names_a_server_file`).

Gradio reads ``{"path": str, "meta": {"_type": "gradio.FileData"}, ...}`` as a file at any depth of
any input, not only a file box's (``gradio_client.utils.is_file_obj_with_meta``), and downloads a
``path`` that starts ``http://`` or ``https://`` into its cache before any handler runs: no size
bound, no per-client bound, from any public address. A ``path`` that is no URL and lies outside
its upload folder (symlinks resolved) it hashes and copies into that folder, on its event loop, before
any handler runs: Gradio's own "was it uploaded?" check runs only for apps started with ``launch()``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

FILE_TYPE = "gradio.FileData"
URL_MARK = "://"
"""In a file object's ``path``: a URL (Gradio fetches ``http://`` and ``https://``). No path the pages
send holds it: uploads are stored as ``<folder>/<hash>/<name>`` with ``:`` and ``/`` taken out of the name."""


def file_objects(value: Any) -> Iterator[dict]:
    """Every dict in a parsed JSON ``value`` that Gradio reads as a file, at any depth (inside another too)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            meta = item.get("meta")
            if isinstance(item.get("path"), str) and isinstance(meta, dict) and meta.get("_type") == FILE_TYPE:
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


_TOO_DEEP = object()


def _parsed(body: bytes) -> Any:
    """The JSON ``body`` as Gradio (Starlette's ``json.loads``) reads it; None when it is no JSON (Gradio
    refuses it before it reads any file), ``_TOO_DEEP`` when it is nested too deep to be read here."""
    if not body:
        return None
    try:
        return json.loads(body)
    except RecursionError:
        return _TOO_DEEP
    except ValueError:
        return None


def names_a_url(body: bytes) -> bool:
    """True when a JSON request body holds a file object whose ``path`` is a URL, or is nested too deep
    to be read here (such a body is refused rather than passed on unread). A body that is no JSON
    names none: Gradio refuses it before it reads any file."""
    value = _parsed(body)
    return value is _TOO_DEEP or any(URL_MARK in item["path"] for item in file_objects(value))


def names_a_server_file(body: bytes, upload_folder: str) -> bool:
    """True when a JSON request body holds a file object whose ``path``, read as Gradio reads it
    (relative to the working folder, symlinks resolved), is not in ``upload_folder``, or is nested too
    deep to be read here. Gradio would hash and copy such a file into the upload folder before any
    handler runs: ``/dev/zero`` held its event loop for good (the whole server stopped answering), and
    any large file on the disk took its size again in the upload folder. The pages only ever send
    their uploads, which lie in that folder."""
    value = _parsed(body)
    if value is _TOO_DEEP:
        return True
    folder = os.path.realpath(upload_folder)
    return any(not _inside(item["path"], folder) for item in file_objects(value))


def _inside(path: str, folder: str) -> bool:
    try:
        real = os.path.realpath(os.path.abspath(path))
    except (OSError, ValueError):  # an embedded NUL, a name too long
        return False
    return real == folder or real.startswith(folder.rstrip(os.sep) + os.sep)
