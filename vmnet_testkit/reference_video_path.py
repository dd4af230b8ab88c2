"""An older checkout's streamed video path, run beside today's for a same-run speed and agreement check.

Issue 17 asks for the video descriptor's speed "against today's streamed path" (the code when the
issue was filed), measured in the same run. :class:`ReferenceVideoPath` starts one worker process
with ``PYTHONPATH`` set to that checkout (``git worktree add DIR REV``), so it imports the old
``vmnet_core`` untouched, and asks it for one clip at a time: the worker decodes and encodes with
its own ``video_frame_features`` and default encoder and answers the (T, 1280) CNN features with the
wall and CPU seconds of that call (its own process plus its ffmpeg children).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_WORKER = r"""
import importlib, json, pathlib, resource, sys, time
import numpy as np
import vmnet_core

def cpu():
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

# the layout moved (issue 12): ask the checkout's own package where its video descriptor lives
package = pathlib.Path(vmnet_core.__file__).parent
layered = (package / "features" / "video_descriptor.py").exists()
module = importlib.import_module("vmnet_core.features.video_descriptor" if layered else "vmnet_core.video_descriptor")
encoder = module.default_frame_encoder()
print(json.dumps({"module": module.__file__}), flush=True)
for line in sys.stdin:
    clip, out = json.loads(line)
    t0, c0 = time.perf_counter(), cpu()
    features = module.video_frame_features(clip, encoder=encoder)
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    np.save(out, np.asarray(features, dtype=np.float32))
    print(json.dumps({"wall_s": wall, "cpu_s": cpu_s}), flush=True)
"""


class ReferenceVideoPath:
    """``video_frame_features`` of the checkout at ``tree``, in a worker process (close it when done)."""

    def __init__(self, tree: str | Path) -> None:
        self.tree = Path(tree).resolve()
        if not (self.tree / "vmnet_core").is_dir():
            raise ValueError(f"{self.tree} holds no vmnet_core package (make one with: git worktree add DIR REV)")
        env = {**os.environ, "PYTHONPATH": str(self.tree)}
        self._proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True, env=env, cwd=self.tree)
        hello = json.loads(self._answer())
        if not Path(hello["module"]).resolve().is_relative_to(self.tree):
            self.close()
            raise RuntimeError(f"the reference worker imported {hello['module']}, not the code under {self.tree}")
        self._scratch = tempfile.TemporaryDirectory(prefix="reference-video-")

    def _answer(self) -> str:
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the reference worker for {self.tree} stopped (exit {self._proc.wait()})")
        return line

    def features(self, clip: str | Path) -> tuple[np.ndarray, float, float]:
        """(T, 1280) float32 CNN features of ``clip``, the call's wall seconds and CPU seconds."""
        out = Path(self._scratch.name) / "features.npy"
        self._proc.stdin.write(json.dumps([str(Path(clip).resolve()), str(out)]) + "\n")
        self._proc.stdin.flush()
        timing = json.loads(self._answer())
        return np.load(out), timing["wall_s"], timing["cpu_s"]

    def close(self) -> None:
        """Stop the worker and remove its scratch folder."""
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            scratch.cleanup()

    def __enter__(self) -> ReferenceVideoPath:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
