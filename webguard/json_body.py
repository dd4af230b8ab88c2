"""A request body read once as Gradio will read it (Starlette's ``json.loads``), for every check of
the guard that looks inside it: file objects, the event named, the session and its size."""

from __future__ import annotations

import json
from typing import Any

EMPTY = object()
"""An empty body."""
NOT_JSON = object()
"""A body that is no JSON: Gradio refuses it before it reads anything in it."""
TOO_DEEP = object()
"""A body nested too deep for ``json.loads`` here: it cannot be read, so it is refused unread."""


def read_json(body: bytes) -> Any:
    """The JSON value of ``body``, or :data:`EMPTY` / :data:`NOT_JSON` / :data:`TOO_DEEP`."""
    if not body:
        return EMPTY
    try:
        return json.loads(body)
    except RecursionError:
        return TOO_DEEP
    except ValueError:
        return NOT_JSON
