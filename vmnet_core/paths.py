"""Where generated data lives: one cache directory outside git."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache root: ``$VMNET_CACHE`` if set, else ``~/.cache/vmnet``; created on first use."""
    root = Path(os.environ.get("VMNET_CACHE") or Path.home() / ".cache" / "vmnet").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root
