"""Engine, the feed lock that keeps a numbered feed's ids in commit order, and SQLite's
checkpoint."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlmodel import create_engine

# Advisory-lock keys (PostgreSQL): class 1 = check-in feed order (with the venue id as the
# second key: ingest/order.py), class 2 = notice feed order.
CHECKIN_LOCK = 1
NOTICE_LOCK = 2
# How long a SQLite writer waits for another's write lock before the request fails (503):
# long enough for any transaction of ours (a 2,000-row job chunk holds it well under a
# second), short enough that a stuck lock is an outage the client hears about in seconds.
SQLITE_BUSY_SECONDS = 5
# PostgreSQL: a database host that does not answer is down, not slow.
PG_CONNECT_TIMEOUT = 5
# SQLite WAL: a commit that finds the log past this many pages checkpoints it itself, two
# fsyncs inside the commit (≈5 ms at p99 on a batch of check-ins). The web process
# checkpoints in the background instead (checkpoint(), every CHECKPOINT_SECONDS), so this
# is only the backstop for a database no web process is writing to (≈80 MB of log), and it
# must stay well above SQLITE_RESTART_PAGES, or commits would checkpoint before it.
SQLITE_AUTOCHECKPOINT_PAGES = 20_000
CHECKPOINT_SECONDS = 0.2


def describe_error(exc: BaseException) -> str:
    """An exception for a log line: its class and the driver's first line of message. Never
    the SQL with its parameters (names, phones, ID numbers) nor PostgreSQL's DETAIL, which
    quotes the values of the row ("Failing row contains (…)", "Key (phone)=(…)")."""
    source = getattr(exc, "orig", None) or exc
    lines = str(source).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"


def make_engine(url: str) -> Engine:
    """An engine tuned for each backend: SQLite in WAL mode, PostgreSQL with a pool.

    hide_parameters: SQLAlchemy's errors carry the statement and, by default, its bound
    values; those are citizens' names and phones, and errors end up in logs, tracebacks and
    RQ's stored exc_info. The statement alone is enough to debug."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, hide_parameters=True,
                               connect_args={"check_same_thread": False,
                                             "timeout": SQLITE_BUSY_SECONDS})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: durable across process crashes, at most the last commit
            # lost on power loss; an fsync per scan would cap throughput at the disk's rate.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
            cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
            cur.close()

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True,
                         hide_parameters=True,
                         connect_args={"connect_timeout": PG_CONNECT_TIMEOUT})


# A PASSIVE checkpoint copies the log into the database but cannot rewind it: the log starts
# over from its beginning only when a write begins with every frame already copied, and under
# a steady stream of batches (one every few ms) that never happens. The log then grows to the
# backstop, and the commit that crosses it checkpoints everything itself, fsyncs included,
# inside a batch (then written on the event loop: stalls of ~200 ms seen at 2,400 scans/s;
# now in the check-in writer process, ingest/writer.py, where it would hold up every scan
# as long). So once the log is past SQLITE_RESTART_PAGES the background
# checkpoint asks for RESTART: it waits (at most RESTART_WAIT_MS) for the moment between two
# batches, copies what is left, and the next batch starts the log anew. Writers meanwhile find
# the lock taken and step aside for a few ms: the RESTART's fsync (3-4 ms here, and up to
# 10), then the first commit after it pays the fdatasync of the new log header. At half
# the benchmark's maximum a batch of ~6 check-ins dirties ~20 pages (the table and five
# indexes), ~8,000 frames a second: at 2,000 pages every 0.2 s round restarted, five such
# stalls a second, which held up ~2 % of the scans by a few ms, right at the p99. 8,000
# pages (32 MB of log) restarts about once a second (bench/README.md has the A/B).
SQLITE_RESTART_PAGES = 8_000
RESTART_WAIT_MS = 200


def checkpoint(engine: Engine) -> None:
    """SQLite: copy the write-ahead log into the database (PASSIVE: it waits for no reader
    or writer, and commits go on meanwhile), and rewind a long log (RESTART, above). Other
    databases: nothing to do."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        _busy, frames, _copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        if frames > SQLITE_RESTART_PAGES:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
            try:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(RESTART)")
            finally:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")


class FeedLock:
    """Serialises insert → commit → publish of a numbered feed across threads and processes.

    Held from before the rows get their ids until after their events are published, so
    every feed's ids are committed and published in increasing order: a client that
    resumes with the last id it saw can never skip a row that committed late.
    PostgreSQL: a session advisory lock. SQLite: an flock beside the database file.
    """

    def __init__(self, engine: Engine, key: int):
        self.engine = engine
        self.key = key
        self._thread_lock = threading.Lock()
        self._postgres = engine.dialect.name == "postgresql"
        self._file = None
        if engine.dialect.name == "sqlite":
            db = engine.url.database or ""
            lock_path = f"{db}.lock{key}" if db and db != ":memory:" else None
            if lock_path:
                self._file = open(lock_path, "a+")  # noqa: SIM115 - held for the process life

    @contextmanager
    def hold(self, conn: Connection) -> Iterator[None]:
        """Hold the lock on `conn` (PostgreSQL: the lock belongs to that connection, so the
        caller keeps using the same Connection for insert, commit and unlock)."""
        self.acquire(conn)
        try:
            yield
        finally:
            self.release(conn)

    def acquire(self, conn: Connection | None = None) -> None:
        """Take the lock, waiting for it; pair with release() on the same `conn`
        (PostgreSQL's lock is that connection's; SQLite's is this process's: the check-in
        writer holds it across batches, ingest/order.py)."""
        self._thread_lock.acquire()
        try:
            if self._postgres:
                conn.rollback()  # lock and unlock outside any transaction (see _advisory)
                self._advisory(conn, "pg_advisory_lock")
            elif self._file is not None:
                fcntl.flock(self._file, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def release(self, conn: Connection | None = None) -> None:
        try:
            if self._postgres:
                conn.rollback()  # no-op after commit; clears a failed transaction
                self._advisory(conn, "pg_advisory_unlock")
            elif self._file is not None:
                fcntl.flock(self._file, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def _advisory(self, conn: Connection, function: str) -> bool:
        """One round trip: the statement in autocommit on the DBAPI connection. Through the
        Connection it was three (BEGIN, the SELECT, COMMIT), twice a batch: on the machine's
        PostgreSQL 15 a lock, SELECT 1, COMMIT, unlock cycle took 1,358-1,515 µs that way and
        662-840 µs this way (an uncommitted micro-benchmark, 2,000 cycles, run twice)."""
        raw = conn.connection.dbapi_connection
        try:
            raw.autocommit = True
            return bool(raw.execute(f"SELECT {function}(%s, 0)", (self.key,)).fetchone()[0])
        except Exception:
            if raw.closed or getattr(raw, "broken", False):
                conn.invalidate()  # the pool must not hand out a dead connection
            raise
        finally:
            if not raw.closed:  # back to transactions for the batch and the pool
                raw.autocommit = False
