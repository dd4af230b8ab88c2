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

import os
from collections.abc import Iterator
from typing import Any

from webguard.json_body import EMPTY, NOT_JSON, TOO_DEEP, read_json

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


def file_paths(body: bytes) -> list[str] | None:
    """The ``path`` of every file object in a JSON request body (:func:`paths_in` of its value)."""
    return paths_in(read_json(body))


def paths_in(value: Any) -> list[str] | None:
    """The ``path`` of every file object in a body's JSON value (:func:`webguard.json_body.read_json`),
    as Gradio reads it: ``[]`` for a body that is no JSON (Gradio refuses it before it reads any file),
    None for one nested too deep to be read here (refused rather than passed on unread)."""
    if value is TOO_DEEP:
        return None
    if value is EMPTY or value is NOT_JSON:
        return []
    return [item["path"] for item in file_objects(value)]


def is_url(path: str) -> bool:
    """A file object's ``path`` Gradio would download (:data:`URL_MARK`)."""
    return URL_MARK in path


def is_server_file(path: str, upload_folder: str) -> bool:
    """A file object's ``path`` that, read as Gradio reads it (relative to the working folder, symlinks
    resolved), is not in ``upload_folder``: Gradio would hash and copy it there before any handler
    runs (``/dev/zero`` held its event loop for good; any large file took its size again). The pages
    only ever send their uploads, which lie in that folder."""
    from webguard.masks import is_inside  # masks imports this module

    try:
        real = os.path.realpath(os.path.abspath(path))
    except (OSError, ValueError):  # an embedded NUL, a name too long
        return True
    return not is_inside(real, upload_folder)


def names_a_url(body: bytes) -> bool:
    """True when a JSON request body holds a file object whose ``path`` is a URL, or is nested too deep
    to be read here."""
    paths = file_paths(body)
    return paths is None or any(is_url(path) for path in paths)


def names_a_server_file(body: bytes, upload_folder: str) -> bool:
    """True when a JSON request body holds a file object naming a server file (:func:`is_server_file`),
    or is nested too deep to be read here."""
    paths = file_paths(body)
    return paths is None or any(is_server_file(path, upload_folder) for path in paths)
