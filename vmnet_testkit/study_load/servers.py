"""The study app under test: ``bench/serve_study.py`` subprocesses (restartable on the same port and
database) and the handler times they log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vmnet_testkit.processes import free_port, stop_process
from vmnet_testkit.study_server import wait_until_up

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class AppProcess:
    """One ``bench/serve_study.py`` subprocess (restartable on the same port and database)."""

    db_url: str
    port: int
    work_dir: Path
    busy_timeout_ms: int | None = None
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/study/"

    @property
    def timing_log(self) -> Path:
        return self.work_dir / f"timing-{self.port}.log"

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the running process has used so far (Linux /proc)."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def start(self, timeout_s: float = 180.0) -> None:
        """Start the server and wait until ``/study/config`` answers."""
        cmd = [sys.executable, str(ROOT / "bench" / "serve_study.py"), "--db", self.db_url, "--port", str(self.port),
               "--work-dir", str(self.work_dir), "--timing-log", str(self.timing_log)]
        if self.busy_timeout_ms is not None:
            cmd += ["--busy-timeout-ms", str(self.busy_timeout_ms)]
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = (self.work_dir / f"server-{self.port}-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until_up(self.url + "config", timeout_s, self.proc)

    def kill9(self) -> None:
        """``kill -9``: no shutdown handlers, no flush."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then ``kill -9`` after 20 s."""
        if self.proc is not None:
            stop_process(self.proc)



@contextmanager
def serving(db_url: str, work_dir: Path, n_processes: int = 1, busy_timeout_ms: int | None = None):
    """``n_processes`` app processes on one database, started one after the other."""
    apps = [AppProcess(db_url, free_port(), work_dir / f"app{i}", busy_timeout_ms) for i in range(n_processes)]
    try:
        for app in apps:
            app.start()
        yield apps
    finally:
        for app in apps:
            app.stop()



def apps_still_serving(apps: list[AppProcess]) -> list[str]:
    """Problems if an app process exited or was restarted during the run (empty when all served on)."""
    return [f"app process on port {a.port} " + ("exited" if a.proc is None or a.proc.poll() is not None
                                                  else f"was started {a.starts} times")
            for a in apps if a.proc is None or a.proc.poll() is not None or a.starts != 1]



def percentiles(values: list[float]) -> dict:
    """p50, p95 and max of ``values`` (ms), rounded; NaN when empty."""
    v = sorted(values)
    if not v:
        return {"p50": float("nan"), "p95": float("nan"), "max": float("nan")}
    return {"p50": round(v[len(v) // 2], 1), "p95": round(v[min(len(v) - 1, int(0.95 * len(v)))], 1),
            "max": round(v[-1], 1)}



def server_handler_ms(apps: list[AppProcess]) -> dict:
    """The app processes' own time per API call (from their timing logs): endpoint -> percentiles."""
    by_endpoint: dict[str, list[float]] = {}
    for app in apps:
        if app.timing_log.exists():
            for line in app.timing_log.read_text().splitlines():
                name, _, ms = line.partition(" ")
                by_endpoint.setdefault(name, []).append(float(ms))
    return {name: {"calls": len(v), **percentiles(v)} for name, v in sorted(by_endpoint.items())}
