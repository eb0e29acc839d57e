"""The writer process's work: record a batch, commit, answer, publish, in feed order.

Synchronous and single-threaded: the writer process (ingest/process.py) calls
`BatchWriter.write` for each batch the web process sends.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable

import redis
from sqlalchemy.engine import Engine

from ingest.limits import ScanCounter
from ingest.order import VenueOrder
from ingest.publisher import Publisher
from models.checkins import CheckinRequest, CheckinResult, record_checkins
from models.db import SQLITE_BUSY_SECONDS
from models.errors import DomainError
from models.tables import utcnow
from realtime.connection import KeptConnection
from realtime.events import checkin_batch

log = logging.getLogger("scanbook.ingest")
_SQLITE_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
# The longest the writer sleeps between tries for SQLite's write lock while another
# connection holds it: the background checkpoint's RESTART holds it for a few ms, and
# SQLite's own busy handler would sleep 1, 2, 5, 10 … ms, longer than the lock is held.
STEP_ASIDE_MAX = 0.004
# A batch that takes longer than this in the writer is logged with where its time went
# (at half the benchmark's maximum a batch takes ~1 ms).
SLOW_BATCH_SECONDS = 0.05
# At most this many batches' PUBLISHes awaiting Redis's reply while the writer goes on with
# the next batches (see Publisher); past it the writer waits for the replies.
UNREAD_MAX = 32
# PostgreSQL: the writer's connection goes back to the pool after this long without a batch.
KEEP_IDLE_SECONDS = 1.0

Answer = Callable[[list], object]  # called with a batch's results


class BatchWriter:
    """Records, commits and publishes batches, synchronously: the writer process's work."""

    def __init__(self, engine: Engine, redis_client: redis.Redis | KeptConnection,
                 limits_client: redis.Redis | KeptConnection | None = None):
        self.engine = engine
        # The scans' rate limit: on a client of its own (short timeout, no retries).
        self.scans = ScanCounter(limits_client or redis_client)
        self.sqlite = engine.dialect.name == "sqlite"
        self.publisher = Publisher(redis_client)
        # The venues' feed order, held across batches (see settle).
        self.order = VenueOrder(engine, lambda: self.publisher.read(wait=True))
        self._conn = None
        self._used = 0.0  # when the kept connection last wrote a batch (monotonic)
        self._tuned = None  # the DBAPI connection the pragmas below were set on

    @property
    def holding(self) -> bool:
        """Venues' feed order is held across batches (until settle)."""
        return self.order.holding

    def close(self) -> None:
        self.settle()
        self._drop_connection()

    def write(self, requests: list[CheckinRequest], answer: Answer | None = None
              ) -> list[CheckinResult | DomainError]:
        """Count the scans against their rate limit, record, commit, answer, then publish —
        the insert, commit and publish holding the feed order of the batch's venues
        (ingest/order.py). The count is sent first and its reply read after the batch's
        look-ups (record_checkins), so its round trip overlaps them. `answer(results)` goes
        to the web process before the PUBLISH. The PUBLISH is sent without waiting for its
        reply, and the writer goes on to its next batch still holding its venues; it lets
        go once Redis has replied to every PUBLISH sent (settle), so each venue's batches
        reach Redis in id order. PostgreSQL: the venues' locks belong to the writer's own
        connection, kept from batch to batch (see _connection)."""
        with self.scans.send(requests) as verdicts:
            conn = self._connection()
            watch = _Stopwatch()
            before: dict[int, int] = {}  # venue -> its newest id before the batch

            def take_order(venues: list[int]) -> None:
                watch.mark("look-ups")
                before.update(self.order.take(conn, venues))
                watch.mark("feed order")

            try:
                self.order.start(conn)
                if self.sqlite:
                    self._begin_immediate_waiting(conn)
                    watch.mark("write lock")
                results, events, checkouts = record_checkins(
                    conn, requests, now=utcnow(), refused=verdicts, before_insert=take_order)
                self.order.inserted(events)
                watch.mark("record")
                conn.commit()
                watch.mark("commit")
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.rollback()
                self.settle()
                if not self.sqlite:  # it may be broken: the next batch takes another
                    self._drop_connection()
                raise
        try:
            if answer is not None:
                answer(results)
        finally:
            # Even when answering failed: other processes' feeds wait for the batch. A
            # failure is logged there; the hubs resync by the sequence check.
            if events:  # with the stays these arrivals ended: one PUBLISH
                self.publisher.send(checkin_batch(before, events, checkouts))
            self._used = time.monotonic()
            if self.publisher.unread >= UNREAD_MAX:
                self.settle()
        watch.mark("answer+publish")
        watch.log_if_slow(len(requests))
        return results

    def _connection(self):
        """The writer's own connection, kept from batch to batch. PostgreSQL: one idle for
        KEEP_IDLE_SECONDS goes back to the pool, and the next batch takes one the pool has
        pinged (a server or proxy may have closed it meanwhile); while busy there is no
        check-out and no ping a batch."""
        if (self._conn is not None and not self.sqlite and not self.holding
                and time.monotonic() - self._used > KEEP_IDLE_SECONDS):
            self._drop_connection()
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                if self.order.holding:  # its session's locks must end with it, not go
                    conn.invalidate()   # back to the pool
                conn.close()
        self.order.forget()

    def _begin_immediate_waiting(self, conn) -> None:
        """SQLite: take the write lock with BEGIN IMMEDIATE, stepping aside (1 ms doubling to
        STEP_ASIDE_MAX) while another connection holds it, until SQLITE_BUSY_SECONDS: then
        `database is locked`, a 503. A deferred BEGIN would fail outright (SQLITE_BUSY_SNAPSHOT)
        when another connection commits between the batch's first read and its insert."""
        deadline = time.monotonic() + SQLITE_BUSY_SECONDS
        pause = 0.001
        while not self._begin_immediate(conn):
            if time.monotonic() >= deadline:
                raise sqlite3.OperationalError("database is locked")
            time.sleep(pause)
            pause = min(pause * 2, STEP_ASIDE_MAX)

    def settle(self) -> None:
        """Wait for Redis's replies to the PUBLISHes sent (at most PUBLISH_REPLY_SECONDS),
        then let the venues' feed order go.

        The writer keeps its venues from one batch to the next while their replies are on
        their way: a batch that arrives meanwhile is written at once, its PUBLISH sent on
        the same connection after the others (Redis takes them in order). Waiting for the
        reply before every next batch put Redis's scheduling on the path of every scan:
        with both cores busy Redis answered a PUBLISH 3-20 ms late, a stall for the batch
        behind it. Another writer gets a venue only once our PUBLISHes have reached Redis,
        so every hub still sees each venue's ids in order. The process's loop settles
        whenever no batch is waiting (_next_message)."""
        try:
            self.publisher.read(wait=True)
        finally:
            if self.holding:
                try:
                    self.order.release(self._conn)
                except Exception as exc:  # PostgreSQL: the connection is broken; its
                    # locks end with it, and the next batch takes another connection.
                    log.warning("feed order release failed: %r", exc)
                    self._drop_connection()

    def _begin_immediate(self, conn) -> bool:
        """BEGIN IMMEDIATE on `conn`: True with the write lock taken, False when it is not
        free right now."""
        if not conn.in_transaction():
            conn.begin()
        cursor = conn.connection.cursor()
        try:
            raw = conn.connection.dbapi_connection
            if raw is not self._tuned:  # once per DBAPI connection (SQLAlchemy may replace
                # it after an error): the pool's connections wait 5 s for a lock.
                cursor.execute("PRAGMA busy_timeout=0")
                # The batch reads every logbook, venue and citizen it inserts rows for inside
                # this write transaction (no one can delete them meanwhile): the foreign-key
                # checks would look each up again, three index probes a row.
                cursor.execute("PRAGMA foreign_keys=OFF")
                self._tuned = raw
            cursor.execute("BEGIN IMMEDIATE")
            return True
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) not in _SQLITE_BUSY:
                raise
            conn.rollback()
            return False
        finally:
            cursor.close()


class _Stopwatch:
    """Where a batch's time went: named marks in order, logged when the whole took longer
    than SLOW_BATCH_SECONDS (a stall in the writer holds up every scan in flight), with the
    thread's CPU time: the rest of the wall time it waited (a lock, a disk, a core)."""

    def __init__(self):
        self.marks = [("", time.monotonic())]
        self.cpu = time.thread_time()

    def mark(self, name: str) -> None:
        self.marks.append((name, time.monotonic()))

    def log_if_slow(self, size: int) -> None:
        took = self.marks[-1][1] - self.marks[0][1]
        if took > SLOW_BATCH_SECONDS:
            parts = ", ".join(f"{name} {(end - start) * 1e3:.0f}" for (_, start), (name, end)
                              in zip(self.marks, self.marks[1:], strict=False))
            log.warning("slow check-in batch of %d: %.0f ms (%s ms; on a core %.0f ms)",
                        size, took * 1e3, parts, (time.thread_time() - self.cpu) * 1e3)
