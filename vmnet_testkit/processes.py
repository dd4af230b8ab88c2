"""Server subprocesses of the tests and benchmarks: a free port, and a stop that always ends them."""

from __future__ import annotations

import socket
import subprocess


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
