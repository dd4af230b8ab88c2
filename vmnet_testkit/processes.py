"""Subprocesses of the tests and benchmarks: a free port, a stop that always ends a server, the pid
of the app serving a URL, and this process's live children (to check that nothing outlives its work)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit


def free_port() -> int:
    """A TCP port nobody listens on right now (on 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    """SIGTERM ``proc``; SIGKILL it when it has not exited after ``grace_s`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def live_children() -> set[int]:
    """Process ids of this process's children (started from any thread), Linux only."""
    kids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            kids.update(int(pid) for pid in (task / "children").read_text().split())
        except OSError:  # the thread ended meanwhile
            continue
    return kids


def app_pid(url: str) -> int:
    """The pid of the ``app.py`` process serving ``url`` (``http://127.0.0.1:PORT/...``), found by its
    ``--port`` argument; raises LookupError when none serves it."""
    port = str(urlsplit(url).port).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"app.py") for a in args) and b"--port" in args and port in args:
            return int(proc.name)
    raise LookupError(f"no app.py process serves {url}")
