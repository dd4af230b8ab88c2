"""Launch the real app (``python app.py --no-study``) on a free port for end-to-end demo tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 240.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
