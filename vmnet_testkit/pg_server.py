"""A throwaway PostgreSQL server for tests: ``initdb`` into a temporary folder, listen only on a
Unix socket inside it, one fresh database per request, everything removed at exit.

PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` system user
(``runuser``). When the binaries are missing the caller skips, or fails under ``CI=true``.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

PG_BIN_GLOBS = ["/usr/lib/postgresql/*/bin"]
_PORT = 5432  # only names the socket file; the socket lives in a private folder


def find_pg_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (Debian layout, else the PATH), or None."""
    for pattern in PG_BIN_GLOBS:
        for folder in sorted(glob.glob(pattern), reverse=True):
            if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
                return Path(folder)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


class PostgresServer:
    """A private PostgreSQL cluster; ``url(dbname)`` gives a SQLAlchemy URL for a fresh database."""

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="vmnet-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.socket_dir.mkdir()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.socket_dir, "postgres")
        self._names = itertools.count()

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        init = self._run(str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres",
                         "--auth=trust", "--no-sync", "-E", "UTF8")
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()[-500:]}")
        self.resume()

    def resume(self) -> None:
        """Start the server on the existing data folder and socket (``pg_ctl start``, waits until up)."""
        options = f"-c listen_addresses='' -k {self.socket_dir} -p {_PORT} -c fsync=off"
        start = self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", options,
                          "-l", str(self.root / "server.log"), "-w", "start")
        if start.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace") if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {start.stderr.strip()[-300:]} {log[-500:]}")

    def pause(self) -> None:
        """Stop the server but keep its data (``pg_ctl stop -m fast``: open sessions are cut off,
        open transactions rolled back); :meth:`resume` brings it back on the same socket."""
        stop = self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        if stop.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed: {stop.stderr.strip()[-300:]}")

    def stop(self) -> None:
        if self.data.exists():
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@/{dbname}?host={self.socket_dir}&port={_PORT}"

    def fresh_database(self) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(host=str(self.socket_dir), port=_PORT, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


_server: PostgresServer | None = None
_failure: str | None = None


def shared_server() -> PostgresServer:
    """Start (once per test process) and return the shared server; raises RuntimeError with a
    plain reason when PostgreSQL is unavailable."""
    global _server, _failure
    if _server is not None:
        return _server
    if _failure is not None:
        raise RuntimeError(_failure)
    try:
        _server = private_server()
    except RuntimeError as exc:
        _failure = str(exc)
        raise
    return _server


def private_server() -> PostgresServer:
    """Start and return a new cluster of this process's own (removed at exit), for tests that stop
    and restart the server; raises RuntimeError with a plain reason when PostgreSQL is unavailable."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise RuntimeError("the psycopg driver is not installed") from None
    server = PostgresServer(bin_dir)
    try:
        server.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        server.stop()
        raise RuntimeError(f"a throwaway PostgreSQL server could not start: {exc}") from exc
    atexit.register(server.stop)
    return server
