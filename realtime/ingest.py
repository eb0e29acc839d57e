"""Group commit for check-ins: scans arriving together share one transaction and one publish.

The batches are written by a child process of the web process (the writer), not on its event
loop or a thread of it. Recording a batch is ~1.5 ms of CPU for twenty rows (statements,
commit, publish, WAL checkpoints), a third of a scan's cost at half the benchmark's maximum;
on the loop it stalled every other request for that long, and on a thread it had to win the
GIL back from the busy loop at every statement (bench/README.md has the measurements). In a
process of its own it runs on the other core, and the loop only hands over a batch and takes
the answers back: one framed message each way over a socket pair. The writer also counts
the batch's scans against their rate limit (realtime/limits.py), one Redis call a batch.

If the writer dies, the batch in flight is answered 503 (it may or may not have been
committed: a retried scan within 60 s gets the same check-in back) and the next batch starts a
new writer. Nothing committed is lost: the hubs find a batch that was committed but never
published by its sequence check (realtime/events.py) and read it from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import select
import signal
import socket
import sqlite3
import struct
import threading
import time
from collections.abc import Callable
from datetime import datetime

import orjson
import psycopg
import redis
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from models import errors
from models.checkins import CheckinRequest, CheckinResult, newest_checkin_id, record_checkins
from models.crypto import Keyring, keyring, use_keyring
from models.db import (
    CHECKIN_LOCK,
    CHECKPOINT_SECONDS,
    SQLITE_BUSY_SECONDS,
    FeedLock,
    checkpoint,
    describe_error,
    make_engine,
)
from models.errors import DomainError
from models.tables import utcnow
from realtime.connection import KeptConnection, sync_client
from realtime.events import checkin_batch, checkout_messages, encode
from realtime.limits import ScanCounter, Verdicts, connect_sync

log = logging.getLogger("scanbook.ingest")
_SQLITE_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
# The longest the writer sleeps between tries for SQLite's write lock while another
# connection holds it: the background checkpoint's RESTART holds it for a few ms, and
# SQLite's own busy handler would sleep 1, 2, 5, 10 … ms, longer than the lock is held.
STEP_ASIDE_MAX = 0.004
# How long stop() waits for the writer to finish its batch and exit before killing it.
STOP_SECONDS = 10.0
# A batch that takes longer than this in the writer is logged with where its time went
# (at half the benchmark's maximum a batch takes ~1 ms; the stalls seen were 60-190 ms).
SLOW_BATCH_SECONDS = 0.05
# At most this many batches' PUBLISHes awaiting Redis's reply while the writer goes on with
# the next batches (see _Publisher); past it the writer waits for the replies.
UNREAD_MAX = 32
# PostgreSQL: the writer's connection goes back to the pool after this long without a batch.
KEEP_IDLE_SECONDS = 1.0
# How long the writer waits for Redis to answer its PUBLISHes before giving them up (the
# hubs then resync from the database, as after any failed publish).
PUBLISH_REPLY_SECONDS = 1.0


Answer = Callable[[list, int], object]  # called with a batch's results and its prev


class WriterUnavailable(Exception):
    """The batch could not be written: the database was unavailable or locked past
    SQLITE_BUSY_SECONDS, or the writer process died (503, like a database outage)."""


def _unavailable(exc: Exception) -> bool:
    """The database could not be reached or locked (not a problem with the batch)."""
    return isinstance(exc, (OperationalError, sqlite3.OperationalError,
                            psycopg.OperationalError, WriterUnavailable))


class CheckinWriter:
    """Collects check-in requests on the event loop and has the writer process write them in
    batches.

    While one batch is being written the next requests queue up, so a rush gets big batches.
    A scan that finds the writer idle is written at once when traffic is sparse; when the
    writer last wrote within BUSY_SECONDS it lingers LINGER_SECONDS first, so a steady stream
    is written in batches rather than in ones and twos. Each batch costs a transaction (on
    SQLite ~0.5 ms for ten rows: every dirty index page is a WAL write at commit), a publish
    and the hub's and feeds' wake-ups, far more than a row does. The writer holds the feed
    lock from insert to publish, so ids reach every feed in increasing order (resume-safe).
    """

    # The cycle is the linger plus the writer's own ~1 ms a batch, and a scan waits one to
    # two cycles. `bench.scan --rate 2800 --rounds 1 --duration 10`, two interleaved
    # triples (bench/README.md): 2 ms gave scan→feed p50 10-11 ms, p99 27-31 ms (batches
    # of ~12 rows); 1 ms p50 5-6 ms, p99 19-22 ms (~6 rows), for no more CPU a scan; no
    # linger the same batches as 1 ms (a batch waits for the writer anyway) but ~15 % more
    # CPU a scan. Earlier, 2 ms had beaten 5 ms the same way.
    LINGER_SECONDS = 0.001
    BUSY_SECONDS = 0.05

    def __init__(self, engine: Engine, redis_url: str, *, max_batch: int = 500,
                 linger: float | None = None,
                 on_batch: Callable[[int, list[dict]], object] | None = None):
        self.engine = engine
        self.redis_url = redis_url
        # Called with (prev, events) of each committed batch before its scans are answered:
        # the hub hands them to this process's feeds (Hub.local_checkins).
        self.on_batch = on_batch
        self.max_batch = max_batch
        self.linger = self.LINGER_SECONDS if linger is None else linger
        self._last_write = float("-inf")
        # (request, its future, when it arrived on the loop's clock)
        self._pending: list[tuple[CheckinRequest, asyncio.Future, float]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._busy = False  # a batch is with the writer process
        self._child: _Child | None = None
        self._starting: asyncio.Task | None = None
        self.batches = 0
        self.rows = 0
        self.restarts = 0  # writer processes started after the first (because one died)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="checkin-writer")
        # Started now, in the background, so the first scan does not wait for it.
        self._starting = asyncio.create_task(self._ensure_child(), name="checkin-writer-start")

    async def stop(self) -> None:
        if self._task is not None:
            while self._pending or self._busy:  # finish what was accepted before shutting down
                await asyncio.sleep(0.01)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting
        if self._child is not None:
            child, self._child = self._child, None
            await child.stop()

    @property
    def pid(self) -> int | None:
        """The writer process's pid (None before it started)."""
        return self._child.process.pid if self._child is not None else None

    async def submit(self, request: CheckinRequest) -> CheckinResult:
        """Write `request` with the next batch (counted against `request.limit` there)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._pending.append((request, future, loop.time()))
        self._wakeup.set()
        result = await future
        if isinstance(result, DomainError):
            raise result
        return result

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                if (self.linger and len(self._pending) < self.max_batch
                        and loop.time() - self._last_write < self.BUSY_SECONDS):
                    # A steady stream: let the batch fill until its oldest scan has waited
                    # LINGER_SECONDS (also those that came while the last batch was written:
                    # written at once, they made batches of two or three).
                    wait = self._pending[0][2] + self.linger - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                self._busy = True
                try:
                    await self._write_batch(loop)
                finally:
                    self._busy = False

    async def _write_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending[: self.max_batch]
        del self._pending[: self.max_batch]
        try:
            results = await self._write([request for request, _, _ in batch])
        except Exception as exc:  # database down: every caller gets the error
            log.warning("check-in batch of %d failed: %s", len(batch), describe_error(exc))
            if _unavailable(exc):
                # Those who queued meanwhile waited on the same dead database: they
                # hear now, instead of each batch sitting out the timeout in turn.
                batch += self._pending
                self._pending = []
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future, _), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
        self._last_write = loop.time()

    async def _ensure_child(self) -> _Child:
        if self._child is not None and self._child.alive():
            return self._child
        if self._child is not None:  # died: its batch was answered; start another
            old, self._child = self._child, None
            await old.stop()
            self.restarts += 1
            log.warning("check-in writer process exited (%s); starting another",
                        old.process.exitcode)
        # Forking is a few ms, but the first start also starts the fork server (~1 s):
        # off the loop.
        self._child = await asyncio.to_thread(
            _Child.start, self.engine.url.render_as_string(hide_password=False),
            self.redis_url)
        await self._child.connect()
        return self._child

    async def _write(self, requests: list[CheckinRequest]
                     ) -> list[CheckinResult | DomainError]:
        """One batch through the writer process: its results, or the batch's error."""
        if self._starting is not None and not self._starting.done():
            with contextlib.suppress(Exception):  # a failed start is retried just below
                await self._starting
        try:
            child = await self._ensure_child()
            reply = await child.call(_encode_requests(requests))
        except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
            if self._child is not None:
                self._child.kill()
            raise WriterUnavailable(
                "登记服务暂时不可用，请重试 / the check-in writer restarted, please retry"
            ) from exc
        kind, payload = orjson.loads(reply)
        if kind == "failed":
            raise _rebuild_failure(payload)
        prev, results = payload
        results = [_decode_result(r) for r in results]
        events = sorted((r.checkin for r in results
                         if isinstance(r, CheckinResult) and r.created), key=_event_id)
        self.batches += 1
        self.rows += len(events)
        if events and self.on_batch is not None:
            try:
                self.on_batch(prev, events)
            except Exception:  # the feeds still get the batch through Redis
                log.exception("local delivery of a check-in batch failed")
        return results


# --- the writer process ---------------------------------------------------------------------

class BatchWriter:
    """Records, commits and publishes batches, synchronously: the writer process's work."""

    def __init__(self, engine: Engine, redis_client: redis.Redis | KeptConnection,
                 limits_client: redis.Redis | KeptConnection | None = None):
        self.engine = engine
        # The scans' rate limit: on a client of its own (short timeout, no retries).
        self.scans = ScanCounter(limits_client or redis_client)
        self.lock = FeedLock(engine, CHECKIN_LOCK)
        self.sqlite = engine.dialect.name == "sqlite"
        self.publisher = _Publisher(redis_client)
        self.holding = False  # the feed lock is held across batches (see settle)
        self._conn = None
        self._used = 0.0  # when the kept connection last wrote a batch (monotonic)
        self._tuned = None  # the DBAPI connection the pragmas below were set on

    def close(self) -> None:
        self.settle()
        self._drop_connection()

    def write(self, requests: list[CheckinRequest], answer: Answer | None = None
              ) -> list[CheckinResult | DomainError]:
        """Count the scans against their rate limit, record, commit, answer, then publish —
        all but the count under the feed lock. The count is sent first and its reply read
        after the batch's look-ups (record_checkins), so its round trip overlaps them.
        `answer(results, prev)` (`prev`: the newest id before the batch) goes to the web
        process before the PUBLISH: its scans and its own feeds (Hub.local_checkins) need not
        wait for Redis. The PUBLISH is sent without waiting for its reply, and the writer goes
        on to its next batch still holding the lock; the lock is let go once Redis has
        replied to every PUBLISH sent (settle), so batches reach Redis in id order.
        PostgreSQL: the feed lock is an advisory lock of the writer's own connection, kept
        from batch to batch (see _connection)."""
        with self.scans.send(requests) as verdicts:
            conn = self._connection()
            watch = _Stopwatch()
            try:
                if not self.holding:
                    self.lock.acquire(conn)
                    self.holding = True
                watch.mark("feed lock")
                if self.sqlite:
                    self._begin_immediate_waiting(conn)
                    watch.mark("write lock")
                results, events, checkouts, prev = _commit_batch(conn, requests, verdicts,
                                                                 watch)
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.rollback()
                self.settle()
                if not self.sqlite:  # it may be broken: the next batch takes another
                    self._drop_connection()
                raise
        try:
            if answer is not None:
                answer(results, prev)
        finally:
            # Even when answering failed: other processes' feeds wait for the batch. A
            # failure is logged there; the hubs resync by the sequence check.
            if events:
                self.publisher.send(checkin_batch(prev, events))
            for item in checkout_messages(checkouts):  # stays these arrivals ended
                self.publisher.send(item)
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
                conn.close()

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
        then let the feed lock go.

        The writer keeps the lock from one batch to the next while their replies are on
        their way: a batch that arrives meanwhile is written at once, its PUBLISH sent on
        the same connection after the others (Redis takes them in order). Waiting for the
        reply before every next batch put Redis's scheduling on the path of every scan:
        with both cores busy Redis answered a PUBLISH 3-20 ms late, a stall for the batch
        behind it. Another process's writer gets the lock only once our PUBLISHes have
        reached Redis, so every hub still sees the ids in order. The process's loop settles
        whenever no batch is waiting (_next_message)."""
        try:
            self.publisher.read(wait=True)
        finally:
            if self.holding:
                self.holding = False
                try:
                    self.lock.release(self._conn)
                except Exception as exc:  # PostgreSQL: the connection is gone, and its
                    # lock with it; the next batch takes another connection.
                    log.warning("feed lock release failed: %r", exc)
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


class _Publisher:
    """The writer's PUBLISHes: each sent at once, its reply read later (BatchWriter.
    settle). One kept connection, so they reach Redis in the order sent. A failure is
    logged and forgotten: the database has the batches, and a hub that misses one resyncs
    its feeds from there (the sequence check, realtime/events.py)."""

    def __init__(self, client: redis.Redis | KeptConnection):
        self.client = client
        self.unread = 0  # PUBLISHes sent whose replies are not read yet
        self.sent_at = 0.0  # when the oldest of them was sent
        self._conn = None

    def send(self, item: tuple[str, dict]) -> None:
        channel, message = item
        for attempt in range(2):  # a dropped connection (Redis restarted) is made again once
            # The replies still awaited come on the connection they were sent on: keep it.
            conn = self._conn or self.client.connection_pool.get_connection()
            self._conn = conn
            try:
                conn.send_packed_command(conn.pack_command("PUBLISH", channel, encode(message)))
            except (redis.RedisError, OSError) as exc:
                # The first try's failure alone is not worth a warning: the retry follows.
                self._failed(exc, quiet=attempt == 0 and not self.unread)
                continue
            if not self.unread:
                self.sent_at = time.monotonic()
            self.unread += 1
            return

    def fileno(self) -> int | None:
        """The socket the replies come on (for select), or None when none is awaited or the
        connection does not say."""
        sock = getattr(self._conn, "_sock", None) if self.unread else None
        return sock.fileno() if sock is not None else None

    def read(self, *, wait: bool) -> None:
        """Read the replies already here (wait=False), or every one awaited (wait=True)."""
        conn = self._conn
        try:
            while self.unread and (wait or conn.can_read(timeout=0)):
                conn.read_response()
                self.unread -= 1
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)
            return
        if not self.unread and conn is not None:
            self._conn = None
            self.client.connection_pool.release(conn)

    def give_up(self) -> None:
        self._failed(TimeoutError(f"no reply in {PUBLISH_REPLY_SECONDS:.0f} s"))

    def _failed(self, exc: Exception, *, quiet: bool = False) -> None:
        """Drop the connection (its replies are lost: the hubs resync) and forget them."""
        if not quiet:
            log.warning("check-in publish failed (%d unanswered): %s; the hubs resync from "
                        "the database", self.unread, exc)
        self.unread = 0
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.disconnect()
            self.client.connection_pool.release(conn)


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


def _commit_batch(conn, requests: list[CheckinRequest], verdicts: Verdicts,
                  watch: _Stopwatch):
    """Record and commit a batch, the feed lock held: (results, events, checkouts, prev)
    (checkouts: the earlier stays the batch's arrivals ended). `prev` is the
    newest id before the batch (the lock keeps other writers out): hubs check the chain and
    resync when a batch never reached them (see checkin_batch)."""
    prev = newest_checkin_id(conn)
    results, events, checkouts = record_checkins(conn, requests, now=utcnow(),
                                                 refused=verdicts)
    watch.mark("record")
    conn.commit()
    watch.mark("commit")
    return results, events, checkouts, prev


class _Child:
    """The writer process, seen from the web process: its process and its end of the
    socket pair. Messages are a 4-byte length and an orjson document, one reply a request."""

    _context = None

    def __init__(self, process, sock: socket.socket):
        self.process = process
        self._sock = sock
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @classmethod
    def start(cls, database_url: str, redis_url: str) -> _Child:
        parent_end, child_end = socket.socketpair()
        process = _context().Process(
            target=_child_main, name="scanbook-checkin-writer", daemon=True,
            args=(child_end, database_url, redis_url, dict(os.environ), keyring()))
        try:
            process.start()
        finally:
            child_end.close()
        return cls(process, parent_end)

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(sock=self._sock)

    def alive(self) -> bool:
        """Its socket is open at both ends (a writer that exits closes its end: EOF here)."""
        return (self._reader is not None and not self._reader.at_eof()
                and not self._writer.is_closing())

    async def call(self, message: bytes) -> bytes:
        self._writer.write(struct.pack("!I", len(message)) + message)
        size = struct.unpack("!I", await self._reader.readexactly(4))[0]
        return await self._reader.readexactly(size)

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()

    async def stop(self) -> None:
        """Close its socket (the writer exits after its batch), wait, kill if it hangs."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        else:
            self._sock.close()
        await asyncio.to_thread(self._join)

    def _join(self) -> None:
        self.process.join(STOP_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


# The writer's PUBLISH connection: a publish is sent under the feed lock, so a Redis that does
# not answer must not hold the lock for long; the database has the batch and the feeds resync,
# so giving up after PUBLISH_TIMEOUT loses nothing (docs/redis-clients.md).
PUBLISH_TIMEOUT = 1.0


def publish_client(redis_url: str) -> redis.Redis:
    return sync_client(redis_url, socket_timeout=PUBLISH_TIMEOUT,
                       socket_connect_timeout=PUBLISH_TIMEOUT)


def _context():
    """The fork server: a clean process that has imported this module, which forks each
    writer in a few ms. Not the web process itself: a fork of a process with an event loop
    and threads inherits their locks mid-use."""
    if _Child._context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["realtime.ingest"])
        _Child._context = ctx
    return _Child._context


def _child_main(sock: socket.socket, database_url: str, redis_url: str, environ: dict,
                ring: Keyring) -> None:
    """The writer process: a batch in, its results out, until the web process closes the
    socket (or dies). SQLite: a thread checkpoints the WAL in the background."""
    # Ctrl-C reaches the whole process group: the web process stops us (closes the socket)
    # once the batches accepted before it have been written.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.clear()
    os.environ.update(environ)
    use_keyring(ring)
    # What was inherited from the fork server lives as long as we do: keep the collector's
    # full collections from walking it (a pause in the middle of a batch).
    gc.freeze()
    engine = make_engine(database_url)
    client = KeptConnection(publish_client(redis_url))
    limits_client = KeptConnection(connect_sync(redis_url))
    writer = BatchWriter(engine, client, limits_client)
    stop = threading.Event()
    if writer.sqlite:
        threading.Thread(target=_checkpoints, args=(engine, stop), daemon=True,
                         name="wal-checkpoint").start()
    try:
        while (message := _next_message(writer, sock)) is not None:
            _handle(writer, sock, message)
    finally:
        stop.set()
        writer.close()
        client.close()
        limits_client.close()
        engine.dispose()


def _checkpoints(engine: Engine, stop: threading.Event) -> None:
    """Checkpoint the log every CHECKPOINT_SECONDS, so no batch's commit pays the
    checkpoint's fsyncs (models.db.checkpoint: PASSIVE, RESTART when long)."""
    while not stop.wait(CHECKPOINT_SECONDS):
        started = time.monotonic()
        try:
            checkpoint(engine)
        except Exception as exc:  # busy or away: the next round, or the backstop, will do
            log.debug("WAL checkpoint skipped: %s", exc)
        if (took := time.monotonic() - started) > SLOW_BATCH_SECONDS:
            log.warning("slow WAL checkpoint: %.0f ms", took * 1e3)


def _next_message(writer: BatchWriter, sock: socket.socket) -> bytes | None:
    """The next batch from the web process. While waiting for it, read the replies to the
    PUBLISHes sent and let the feed lock go once they are all in (BatchWriter.settle); a
    batch that comes first is written straight away, the lock still held."""
    while writer.holding:
        fd = writer.publisher.fileno()
        left = writer.publisher.sent_at + PUBLISH_REPLY_SECONDS - time.monotonic()
        if fd is None or left <= 0:
            if fd is not None:  # no reply in PUBLISH_REPLY_SECONDS: Redis is away
                writer.publisher.give_up()
            writer.settle()
            break
        ready, _, _ = select.select([sock, fd], [], [], left)
        if sock in ready:
            break
        writer.publisher.read(wait=False)
    return _recv(sock)


def _handle(writer: BatchWriter, sock: socket.socket, message: bytes) -> None:
    """Write one batch and send its answer (the moment its PUBLISH is sent)."""
    requests = _decode_requests(message)
    answered = False

    def answer(results: list[CheckinResult | DomainError], prev: int) -> None:
        nonlocal answered
        answered = True  # sent or not: the batch is committed (a failed send ends us anyway)
        _send(sock, orjson.dumps(["ok", [prev, [_encode_result(r) for r in results]]]))

    try:
        writer.write(requests, answer)
    except Exception as exc:
        if answered:  # the batch is committed and answered; only the PUBLISH failed after
            log.warning("check-in batch answered, then failed: %s", describe_error(exc))
            return
        _send(sock, orjson.dumps(["failed", _describe_failure(exc)]))


def _recv(sock: socket.socket) -> bytes | None:
    head = _read_exactly(sock, 4)
    if head is None:
        return None
    return _read_exactly(sock, struct.unpack("!I", head)[0])


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        try:
            chunk = sock.recv(min(left, 1 << 20))
        except (ConnectionError, OSError):
            return None
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _send(sock: socket.socket, message: bytes) -> None:
    sock.sendall(struct.pack("!I", len(message)) + message)


# --- what crosses the socket ----------------------------------------------------------------

def _event_id(event: dict) -> int:
    return event["id"]


def _encode_requests(requests: list[CheckinRequest]) -> bytes:
    return orjson.dumps([[r.citizen_id, r.code, r.logbook_id, r.via, r.helper_id,
                          None if r.at is None else r.at.isoformat(), r.limit, r.visitor_id]
                         for r in requests])


def _decode_requests(message: bytes) -> list[CheckinRequest]:
    return [CheckinRequest(citizen_id=c, code=code, logbook_id=lb, via=via, helper_id=helper,
                           at=None if at is None else datetime.fromisoformat(at), limit=limit,
                           visitor_id=visitor)
            for c, code, lb, via, helper, at, limit, visitor in orjson.loads(message)]


# What some errors carry besides their message: a logbook's state (410), a retry-after (429).
_ERROR_EXTRAS = ("state", "retry_after")


def _encode_result(result: CheckinResult | DomainError) -> list:
    if isinstance(result, CheckinResult):
        return [1, result.checkin, result.venue_name, result.created]
    return [0, type(result).__name__, result.message, result.code, result.detail,
            {name: getattr(result, name) for name in _ERROR_EXTRAS if hasattr(result, name)}]


def _decode_result(item: list) -> CheckinResult | DomainError:
    if item[0] == 1:
        return CheckinResult(item[1], item[2], item[3])
    _, name, message, code, detail, extras = item
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, DomainError)):
        cls = DomainError
    error = cls.__new__(cls)
    DomainError.__init__(error, message, code=code, detail=detail)
    for attribute, value in extras.items():
        setattr(error, attribute, value)
    return error


def _describe_failure(exc: Exception) -> list:
    """A batch's error as [kind, message]: 'unavailable' (503) or 'error' (500)."""
    log.warning("check-in batch failed in the writer: %s", describe_error(exc))
    return ["unavailable" if _unavailable(exc) else "error", describe_error(exc)]


def _rebuild_failure(payload: list) -> Exception:
    kind, message = payload
    if kind == "unavailable":
        return WriterUnavailable(message)
    return RuntimeError(f"check-in writer: {message}")
