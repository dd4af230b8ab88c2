"""Text shown to visitors carries no server paths (docs/security.md): absolute paths become
``…/<last part>``, so a model card still says *which* store or file without saying *where*."""

from __future__ import annotations

import re

_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(?:~/|/)(?:[^\s`'\"()<>\[\]/]+/)+([^\s`'\"()<>\[\]/]+)")


def without_server_paths(text: str) -> str:
    """``text`` with every absolute (or ``~``) path shortened to ``…/name``; URLs are left alone."""
    return _ABSOLUTE_PATH.sub(lambda m: f"…/{m.group(1)}", text)
