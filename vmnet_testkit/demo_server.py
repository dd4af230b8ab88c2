"""Launch the real app (``python app.py --no-study``) on a free port for end-to-end demo tests.

Starting the app costs tens of seconds on a busy 2-core machine (gradio and torch imports, the
music descriptor's first compile), so the demo test files share one server per pytest process:
:func:`shared_demo` starts it on first use and stops it when the process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vmnet_testkit.processes import free_port, stop_process

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 300.0
UPLOAD_LIMIT_MB = 1
ADMIN_PASSWORD = "demo-admin-secret"
VIDEO_LIMIT_S = 20


def copy_bundle(bundle: Path, dst: Path) -> Path:
    """A private copy of a bundle's files (not its ablation or training logs), so a test may add
    music to its catalog without touching the shared one. Catalog paths are absolute and stay valid."""
    return Path(shutil.copytree(bundle, dst, ignore=shutil.ignore_patterns("ablation", "training")))


@contextmanager
def running_app(bundle: Path, cache: Path, *extra_args: str) -> Iterator[str]:
    """Serve ``app.py --bundle BUNDLE --no-study EXTRA_ARGS`` with ``VMNET_CACHE=cache``; yield its URL.

    The server's output goes to ``cache/server.log`` (shown in the error when it does not start).
    """
    port = free_port()
    cache.mkdir(parents=True, exist_ok=True)
    log_path = cache / "server.log"
    env = {**os.environ, "VMNET_CACHE": str(cache), "GRADIO_ANALYTICS_ENABLED": "False",
           "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, str(ROOT / "app.py"), "--bundle", str(bundle), "--port", str(port), "--no-study",
           *extra_args]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(proc, url, log_path)
        yield url
    finally:
        stop_process(proc)


def _wait_until_up(proc: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"app.py did not answer within {START_TIMEOUT_S:.0f} s:\n"
                       f"{log_path.read_text(errors='replace')}")


@dataclass(frozen=True)
class ServedDemo:
    """A running demo: its URL, ``VMNET_CACHE``, its private bundle copy and the ``--music-dir`` folder."""

    url: str
    cache: Path
    bundle: Path
    music_dir: Path

    @property
    def query_cache(self) -> Path:
        return self.cache / "work" / "demo" / "query-cache"


_SHARED: dict[Path, ServedDemo] = {}
_STACK = contextlib.ExitStack()
atexit.register(_STACK.close)


def shared_demo(tiny_bundle: Path, root: Path) -> ServedDemo:
    """The process's demo server over a copy of ``tiny_bundle`` (started under ``root`` on first use).

    It runs with two extra tracks indexed at start (``--music-dir``: ``calm-tone.wav`` and
    ``nested/bright-tone.ogg``), a ``UPLOAD_LIMIT_MB`` upload limit and a ``VIDEO_LIMIT_S`` analysis
    limit, so those paths are cheap to reach from tests; the admin (``ADMIN_PASSWORD``) may index
    folders under ``root/music-root`` from ``/admin-music``.
    """
    from vmnet_testkit.mediagen import make_audio

    key = Path(tiny_bundle).resolve()
    if key not in _SHARED:
        root.mkdir(parents=True, exist_ok=True)
        bundle = copy_bundle(key, root / "bundle")
        music = root / "my-music"
        make_audio(music / "calm-tone.wav", seconds=4, freq=330, seed=1)
        make_audio(music / "nested" / "bright-tone.ogg", seconds=4, freq=880, seed=2)
        cache = root / "cache"
        url = _STACK.enter_context(running_app(bundle, cache, "--music-dir", str(music), "--max-upload-mb",
                                               str(UPLOAD_LIMIT_MB), "--max-video-s", str(VIDEO_LIMIT_S),
                                               "--music-root", str(root / "music-root"),
                                               "--admin-password", ADMIN_PASSWORD))
        _SHARED[key] = ServedDemo(url=url, cache=cache, bundle=bundle, music_dir=music)
    return _SHARED[key]
