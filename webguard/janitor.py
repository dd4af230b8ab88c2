"""Visitor uploads and Gradio's temp files removed once old, the folder kept under a size bound."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable


class UploadJanitor:
    """Removes files under ``folder`` older than ``max_age_s`` and, while the folder holds more than
    ``max_bytes``, the oldest ones; every ``period_s`` s in a daemon thread (``start()``), or once by
    ``sweep()``. ``keep``: files the pages reference from their start (a figure) are never removed.
    ``forget(paths)`` is called with what was removed (to drop Gradio's records of them).

    A file's age is the time since its inode last changed (``st_ctime``: made, copied in, touched),
    not since its modification time: Gradio caches a file with ``shutil.copy2``, which keeps the
    source's modification time, and the study's stimuli all carry 2000-01-01
    (``study.stimuli.FIXED_MTIME``, for blinding), so by that time a stimulus handed to a rater a
    second ago would be 26 years old and go at the next sweep. (Gradio's own cache cleaner ages
    files by ``st_ctime`` too, and touches a cached copy it hands out again.)
    """

    def __init__(self, folder: str | os.PathLike, max_age_s: float, max_bytes: int, period_s: float = 60.0,
                 forget: Callable[[set[str]], None] | None = None, keep: Iterable[str] = ()):
        self.folder, self.max_age_s, self.max_bytes, self.period_s = str(folder), max_age_s, max_bytes, period_s
        self.forget = forget or (lambda removed: None)
        self.keep = {os.path.realpath(p) for p in keep}
        self._stop = threading.Event()

    def sweep(self, now: float | None = None) -> set[str]:
        """Remove what is too old or over the size bound; returns the removed file paths."""
        now = time.time() if now is None else now
        files = []
        for root, _dirs, names in os.walk(self.folder):
            for name in names:
                path = os.path.join(root, name)
                if os.path.realpath(path) in self.keep:
                    continue
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                files.append((st.st_ctime, st.st_size, path))
        files.sort()
        total = sum(size for _, size, _ in files)
        removed: set[str] = set()
        for changed, size, path in files:
            if now - changed <= self.max_age_s and total <= self.max_bytes:
                break
            try:
                os.unlink(path)
            except OSError:
                continue
            removed.add(path)
            total -= size
        self._remove_empty_dirs()
        if removed:
            self.forget(removed)
        return removed

    def _remove_empty_dirs(self, min_age_s: float = 60.0) -> None:
        """Empty folders left behind (not ones a running upload made in the last ``min_age_s`` s)."""
        for root, dirs, names in os.walk(self.folder, topdown=False):
            if root != self.folder and not dirs and not names:
                try:
                    if time.time() - os.lstat(root).st_mtime > min_age_s:
                        shutil.rmtree(root, ignore_errors=True)
                except OSError:
                    continue

    def start(self) -> UploadJanitor:
        threading.Thread(target=self._run, name="vmnet-upload-janitor", daemon=True).start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.sweep()
            except Exception:  # a failed sweep must not stop the next one
                pass

    def stop(self) -> None:
        self._stop.set()
