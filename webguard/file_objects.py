"""Gradio's file objects in a JSON request body: where the guard puts a folder back
(:meth:`webguard.masks.PathMask.unmask_files`) and where it refuses a URL (:func:`names_a_url`).

Gradio reads ``{"path": str, "meta": {"_type": "gradio.FileData"}, ...}`` as a file at any depth of
any input, not only a file box's (``gradio_client.utils.is_file_obj_with_meta``), and downloads a
``path`` that starts ``http://`` or ``https://`` into its cache before any handler runs: no size
bound, no per-client bound, from any public address.
"""

from __future__ import annotations

import json
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


def names_a_url(body: bytes) -> bool:
    """True when a JSON request body holds a file object whose ``path`` is a URL, or is nested too deep
    to be read here (such a body is refused rather than passed on unread). A body that is no JSON
    names none: Gradio refuses it before it reads any file."""
    if not body:
        return False
    try:
        value = json.loads(body)
    except RecursionError:
        return True
    except ValueError:
        return False
    return any(URL_MARK in item["path"] for item in file_objects(value))
