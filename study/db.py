"""Database access: an engine for any SQLAlchemy URL, SQLite tuned for many short writers
(WAL, busy timeout, ``BEGIN IMMEDIATE`` for writes, writers of one process queued in-process),
and Alembic migrations run from code.

``sqlite:///study.db`` is the default kind; ``postgresql+psycopg://user@host/db`` works the same.
A bare file path is read as a SQLite file.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from vmnet_core.errors import VmnetError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATION_LOCK_ID = 0x766D6E6574  # "vmnet": a PostgreSQL advisory lock held while migrating


def normalise_url(url: str) -> str:
    """A SQLAlchemy URL; a bare path such as ``study.db`` becomes ``sqlite:///study.db``."""
    url = str(url).strip()
    if not url:
        raise VmnetError("No database was given; pass a SQLAlchemy URL such as sqlite:///study.db.")
    if "://" not in url:
        return f"sqlite:///{url}"
    return url


def make_engine(url: str, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engine:
    """An engine for ``url``. On SQLite: WAL journal, a busy timeout (30 s by default), foreign keys
    on, and transactions begun by SQLAlchemy (``BEGIN`` or, for writes, ``BEGIN IMMEDIATE``)."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise VmnetError(f"The database URL {url!r} is not a valid SQLAlchemy URL.") from exc
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below start transactions
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn) -> None:
        # A deferred transaction that reads and then writes can fail with SQLITE_BUSY without waiting;
        # write transactions take the write lock up front so the busy timeout applies.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _alembic_config(engine_or_url):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if isinstance(engine_or_url, str):
        cfg.set_main_option("sqlalchemy.url", normalise_url(engine_or_url).replace("%", "%%"))
    return cfg


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Bring the database's study tables to ``revision`` (Alembic ``upgrade``), creating them if new."""
    from alembic import command

    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    cfg = _alembic_config(engine)
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as conn:
            if sqlite:
                conn.execution_options(sqlite_begin="IMMEDIATE")  # two processes starting at once take turns
                _sqlite_foreign_keys(conn, on=False)
            try:
                with conn.begin():
                    if engine.dialect.name == "postgresql":
                        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, revision)
                    if sqlite and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check").all()):
                        raise RuntimeError(f"the study migration would leave rows without their parents: {broken[:5]}")
            finally:
                if sqlite:
                    _sqlite_foreign_keys(conn, on=True)
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()


def _sqlite_foreign_keys(conn, on: bool) -> None:
    """Switch SQLite's foreign keys on or off for ``conn``, outside any transaction (inside one the
    pragma does nothing). A migration that rebuilds a table (Alembic's batch mode: copy, drop,
    rename) runs with them off, as SQLite's ALTER TABLE page prescribes: with them on, dropping the
    old ``assignment`` table deleted every trial and vote through ``ON DELETE CASCADE``."""
    conn.connection.dbapi_connection.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


class WriterQueueTimeout(SQLAlchemyError):
    """A SQLite write waited longer than the busy timeout for this process's other writers."""


class Database:
    """An engine plus two kinds of short transactions: ``read()`` and ``write()``.

    On SQLite one process's writers take turns on a lock of their own before ``BEGIN IMMEDIATE``:
    a waiting writer wakes the moment the one before it commits, where SQLite's busy handler would
    poll with sleeps of up to 100 ms. Writers of other processes still meet at SQLite's lock.
    """

    def __init__(self, url: str, migrate: bool = True, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS):
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, busy_timeout_ms)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.busy_timeout_s = busy_timeout_ms / 1000
        self._sqlite_writers = threading.Lock() if self.is_sqlite else None
        if migrate:
            upgrade(self.engine)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; objects stay usable after it closes."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error. On SQLite it
        first waits (up to the busy timeout, else :class:`WriterQueueTimeout`) for this process's
        other writers."""
        if self._sqlite_writers is None:
            yield from self._write_session()
            return
        if not self._sqlite_writers.acquire(timeout=self.busy_timeout_s):
            raise WriterQueueTimeout(f"another write of this process held the database over {self.busy_timeout_s:g} s")
        try:
            yield from self._write_session()
        finally:
            self._sqlite_writers.release()

    def _write_session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            if self.is_sqlite:
                session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str, migrate: bool = True, must_exist: bool = False) -> Database:
    """Open (and by default migrate) the study database at ``url``; with ``must_exist``, a SQLite
    file that is not there is refused instead of created."""
    if must_exist:
        parsed = make_url(normalise_url(url))
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
                and not Path(parsed.database).expanduser().exists():
            raise VmnetError(f"The study database {parsed.database} does not exist; create a study first.")
    return Database(url, migrate=migrate)
