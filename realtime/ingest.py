"""Group commit for check-ins: scans arriving together share one transaction and one publish."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading

import anyio.to_thread
import psycopg
import redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from models.checkins import CheckinRequest, CheckinResult, newest_checkin_id, record_checkins
from models.db import CHECKIN_LOCK, CHECKPOINT_SECONDS, SQLITE_BUSY_SECONDS, FeedLock, checkpoint
from models.errors import DomainError
from models.tables import utcnow
from realtime import resp
from realtime.connection import async_client
from realtime.events import checkin_batch, publish, publish_async

log = logging.getLogger("scanbook.ingest")
_SQLITE_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
# The longest the inline writer sleeps between tries for a taken lock: the background
# checkpoint's RESTART holds it for a few ms, and a longer sleep would outlast it.
STEP_ASIDE_MAX = 0.004


def _unavailable(exc: Exception) -> bool:
    """The database could not be reached or locked (not a problem with the batch)."""
    return isinstance(exc, (OperationalError, sqlite3.OperationalError,
                            psycopg.OperationalError))


class CheckinWriter:
    """Collects check-in requests and writes them in batches.

    While one batch is being committed the next requests queue up, so a rush gets big
    batches. A scan that finds the writer idle is written at once when traffic is sparse; when
    the writer last wrote within BUSY_SECONDS it lingers LINGER_SECONDS first, so a steady
    stream is written in batches rather than in ones and twos. Each batch costs a
    transaction (on SQLite ~0.5 ms for ten rows: every dirty index page is a WAL write at
    commit), a publish and the hub's and feeds' wake-ups, far more than a row does. The feed
    lock is held from insert to publish, so ids reach every feed in increasing order
    (resume-safe).
    """

    # At 2,400 scans/s (open loop, like bench/scan.py's fixed phase; two interleaved rounds of
    # each, after the checkpoint fix in models/db.py) a 5 ms linger cost the server ~296 µs of
    # CPU a scan against ~326 µs at 2 ms, its scan→feed p99 within the noise (23–39 ms against
    # 14–36 ms). 8 ms did worse on latency. A quarter of the 20 ms p99 budget.
    LINGER_SECONDS = 0.005
    BUSY_SECONDS = 0.05

    def __init__(self, engine: Engine, redis_client: redis.Redis, *, max_batch: int = 500,
                 linger: float | None = None, redis_url: str | None = None):
        self.engine = engine
        self.redis = redis_client
        # SQLite with an asyncio Redis client at hand: batches are written on the event loop
        # itself (see _write_inline); otherwise (PostgreSQL) on the writer's thread.
        self.inline = engine.dialect.name == "sqlite" and redis_url is not None
        self.redis_url = redis_url
        self._aredis = None
        self._conn = None
        self._tuned = None  # the DBAPI connection the inline writer's pragmas were set on
        self.lock = FeedLock(engine, CHECKIN_LOCK)
        self.max_batch = max_batch
        self.linger = self.LINGER_SECONDS if linger is None else linger
        self._last_write = float("-inf")
        self._pending: list[tuple[CheckinRequest, asyncio.Future]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._checkpoints: asyncio.Task | None = None
        self._thread: threading.Thread | None = None
        self._busy = False  # a batch is being written (inline or on the writer thread)
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.batches = 0
        self.rows = 0
        self.publish_failures = 0

    async def start(self) -> None:
        if self.inline:
            self._aredis = (resp.LeanRedis(self.redis_url) if resp.supports(self.redis_url)
                            else async_client(self.redis_url, socket_timeout=1,
                                              socket_connect_timeout=1,
                                              retry=Retry(NoBackoff(), 0)))
            self._conn = self.engine.connect()
        else:
            self._start_thread()
        self._task = asyncio.create_task(self._run(), name="checkin-writer")
        if self.engine.dialect.name == "sqlite":
            self._checkpoints = asyncio.create_task(self._checkpoint(), name="wal-checkpoint")

    def _start_thread(self) -> None:
        # The writer's own thread, for the life of the writer: a batch is handed over and its
        # results handed back with one queue put and one call_soon_threadsafe, instead of a
        # thread-pool call (anyio's cancel scopes and capacity limiter cost ~100 µs of the
        # event loop's time a batch, which a quiet venue pays per scan).
        self._thread = threading.Thread(target=self._serve, name="checkin-writer",
                                        daemon=True)
        self._thread.start()

    async def _checkpoint(self) -> None:
        """SQLite: checkpoint the log on a pool thread in the background, so no batch's commit
        pays the checkpoint's fsyncs (models.db.SQLITE_AUTOCHECKPOINT_PAGES, RESTART)."""
        while True:
            await asyncio.sleep(CHECKPOINT_SECONDS)
            try:
                await anyio.to_thread.run_sync(checkpoint, self.engine)
            except Exception as exc:  # busy or away: the next round, or the backstop, will do
                log.debug("WAL checkpoint skipped: %s", exc)

    async def stop(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoints
        if self._task is not None:
            while self._pending or self._busy:  # finish what was accepted before shutting down
                await asyncio.sleep(0.01)
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._thread is not None:
            self._jobs.put(None)
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 10)
        if self._aredis is not None:
            with contextlib.suppress(Exception):
                await self._aredis.aclose()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()

    async def submit(self, request: CheckinRequest) -> CheckinResult:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        self._wakeup.set()
        result = await future
        if isinstance(result, DomainError):
            raise result
        return result

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            loop = asyncio.get_running_loop()
            if (self.linger and len(self._pending) < self.max_batch
                    and loop.time() - self._last_write < self.BUSY_SECONDS):
                await asyncio.sleep(self.linger)  # a steady stream: let the batch fill
            self._wakeup.clear()
            self._busy = True
            try:
                await self._write_pending(loop)
            finally:
                self._busy = False

    async def _write_pending(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                requests = [request for request, _ in batch]
                results = await (self._write_inline(requests) if self.inline
                                 else self._in_thread(requests))
            except Exception as exc:  # database down: every caller gets the error
                log.warning("check-in batch of %d failed: %s", len(batch), exc)
                if _unavailable(exc):
                    # Those who queued meanwhile waited on the same dead database: they
                    # hear now, instead of each batch sitting out the timeout in turn.
                    batch += self._pending
                    self._pending = []
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
            self._last_write = loop.time()

    async def _write_inline(self, requests: list[CheckinRequest]
                            ) -> list[CheckinResult | DomainError]:
        """SQLite: record, commit and publish a batch on the event loop's own thread.

        A batch is a few local statements (~1 ms for a hundred rows, no fsync in WAL mode
        with synchronous=NORMAL), while a writer thread pays for the GIL at every statement:
        each time SQLite hands the GIL back, the thread waits for the busy event loop to give
        it up again (up to the 5 ms switch interval), several times a batch. At half the
        benchmark's maximum that waiting, not work, made most of a scan's latency.

        The loop never waits on a lock: the feed lock and SQLite's write lock (BEGIN
        IMMEDIATE with busy_timeout 0) are only taken when free; when another process holds
        one, the batch steps aside (asyncio.sleep, 1 ms doubling to STEP_ASIDE_MAX) and tries
        again, until SQLITE_BUSY_SECONDS have passed: then `database is locked`, a 503, as a thread
        waiting out busy_timeout would give. The publish is awaited under the feed lock."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SQLITE_BUSY_SECONDS
        pause = 0.001
        while (attempt := self._attempt(requests)) is None:
            if loop.time() >= deadline:
                raise sqlite3.OperationalError("database is locked")
            await asyncio.sleep(pause)
            pause = min(pause * 2, STEP_ASIDE_MAX)
        results, events, prev = attempt
        try:
            if events and not await publish_async(self._aredis, [checkin_batch(prev, events)]):
                self.publish_failures += 1
        finally:
            self.lock.release()
        self.batches += 1
        self.rows += len(events)
        return results

    def _attempt(self, requests: list[CheckinRequest]):
        """One try: (results, events, prev) with the feed lock held, or None (lock not
        free, nothing done)."""
        if not self.lock.try_acquire():
            return None
        try:
            attempt = self._record(requests)
        except BaseException:
            self.lock.release()
            raise
        if attempt is None:
            self.lock.release()
        return attempt

    def _record(self, requests: list[CheckinRequest]):
        conn = self._conn
        if not conn.in_transaction():
            conn.begin()
        try:
            cursor = conn.connection.cursor()
            try:
                raw = conn.connection.dbapi_connection
                if raw is not self._tuned:  # once per DBAPI connection (SQLAlchemy may
                    # replace it after an error): the pool's connections wait 5 s for a lock.
                    cursor.execute("PRAGMA busy_timeout=0")
                    # The batch reads every logbook, venue and citizen it inserts rows for
                    # inside this write transaction (no one can delete them meanwhile): the
                    # foreign-key checks would look each up again, three index probes a row.
                    cursor.execute("PRAGMA foreign_keys=OFF")
                    self._tuned = raw
                cursor.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", None) not in _SQLITE_BUSY:
                    raise
                conn.rollback()
                return None
            finally:
                cursor.close()
            results, events, prev = _commit_batch(conn, requests)
        except BaseException:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise
        return results, events, prev

    def _in_thread(self, requests: list[CheckinRequest]) -> asyncio.Future:
        """write(requests) on the writer's thread; a future of its results."""
        future = asyncio.get_running_loop().create_future()
        self._jobs.put((requests, future))
        return future

    def _serve(self) -> None:
        """The writer thread: one batch at a time, results back to the event loop."""
        while True:
            job = self._jobs.get()
            if job is None:
                return
            requests, future = job
            loop = future.get_loop()
            try:
                outcome, failed = self.write(requests), False
            except Exception as exc:  # handed to the batch's callers (database down, say)
                outcome, failed = exc, True
            try:
                loop.call_soon_threadsafe(_settle, future, outcome, failed)
            except RuntimeError:  # the loop closed meanwhile: nobody is waiting
                return

    def write(self, requests: list[CheckinRequest]) -> list[CheckinResult | DomainError]:
        """Record, commit, then publish — all under the feed lock."""
        with self.engine.connect() as conn, self.lock.hold(conn):
            results, events, prev = _commit_batch(conn, requests)
            if events and not publish(self.redis, [checkin_batch(prev, events)]):
                self.publish_failures += 1
        self.batches += 1
        self.rows += len(events)
        return results


def _commit_batch(conn, requests: list[CheckinRequest]):
    """Record and commit a batch, the feed lock held: (results, events, prev). `prev` is the
    newest id before the batch (the lock keeps other writers out): hubs check the chain and
    resync when a batch never reached them (see checkin_batch)."""
    prev = newest_checkin_id(conn)
    results, events = record_checkins(conn, requests, now=utcnow())
    conn.commit()
    return results, events, prev


def _settle(future: asyncio.Future, outcome, failed: bool) -> None:
    if future.done():  # the waiting task was cancelled
        return
    if failed:
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
