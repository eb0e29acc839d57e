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
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from models.checkins import CheckinRequest, CheckinResult, newest_checkin_id, record_checkins
from models.db import CHECKIN_LOCK, CHECKPOINT_SECONDS, FeedLock, checkpoint
from models.errors import DomainError
from models.tables import utcnow
from realtime.events import checkin_batch, publish

log = logging.getLogger("scanbook.ingest")


def _unavailable(exc: Exception) -> bool:
    """The database could not be reached or locked (not a problem with the batch)."""
    return isinstance(exc, (OperationalError, sqlite3.OperationalError,
                            psycopg.OperationalError))


class CheckinWriter:
    """Collects check-in requests and writes them in batches from one thread.

    While one batch is being committed the next requests queue up, so a rush gets big
    batches. A scan that finds the writer idle is written at once when traffic is sparse; when
    the writer last wrote within BUSY_SECONDS it lingers LINGER_SECONDS first, so a steady
    stream is written in batches rather than in ones and twos. Each batch costs a thread
    hand-off (and the GIL going back and forth), a transaction, a publish and the hub's and
    feeds' wake-ups, far more than a row does: in bench/scan.py at the maximum rate the
    linger took batches from ~29 to ~50 rows and the server's CPU per scan from ~250 to
    ~210 µs. The feed lock is held from insert to publish, so ids reach every feed in increasing
    order (resume-safe).
    """

    # 2 ms is a tenth of the scan→feed latency budget (p99 ≤ 20 ms, bench/README.md).
    LINGER_SECONDS = 0.002
    BUSY_SECONDS = 0.05

    def __init__(self, engine: Engine, redis_client: redis.Redis, *, max_batch: int = 500,
                 linger: float | None = None):
        self.engine = engine
        self.redis = redis_client
        self.lock = FeedLock(engine, CHECKIN_LOCK)
        self.max_batch = max_batch
        self.linger = self.LINGER_SECONDS if linger is None else linger
        self._last_write = float("-inf")
        self._pending: list[tuple[CheckinRequest, asyncio.Future]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._checkpoints: asyncio.Task | None = None
        self._thread: threading.Thread | None = None
        self._busy = False  # a batch is in the writer thread
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.batches = 0
        self.rows = 0
        self.publish_failures = 0

    async def start(self) -> None:
        # The writer's own thread, for the life of the writer: a batch is handed over and its
        # results handed back with one queue put and one call_soon_threadsafe, instead of a
        # thread-pool call (anyio's cancel scopes and capacity limiter cost ~100 µs of the
        # event loop's time a batch, which a quiet venue pays per scan).
        self._thread = threading.Thread(target=self._serve, name="checkin-writer",
                                        daemon=True)
        self._thread.start()
        self._task = asyncio.create_task(self._run(), name="checkin-writer")
        if self.engine.dialect.name == "sqlite":
            self._checkpoints = asyncio.create_task(self._checkpoint(), name="wal-checkpoint")

    async def _checkpoint(self) -> None:
        """SQLite: checkpoint the log in the background, beside the writer thread, so no
        batch's commit pays the checkpoint's fsyncs (models.db.SQLITE_AUTOCHECKPOINT_PAGES)."""
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
                results = await self._in_thread([request for request, _ in batch])
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
            # The newest id before this batch (the lock keeps other writers out): hubs check
            # the chain and resync when a batch never reached them (see checkin_batch).
            prev = newest_checkin_id(conn)
            results, events = record_checkins(conn, requests, now=utcnow())
            conn.commit()
            if events and not publish(self.redis, [checkin_batch(prev, events)]):
                self.publish_failures += 1
        self.batches += 1
        self.rows += len(events)
        return results


def _settle(future: asyncio.Future, outcome, failed: bool) -> None:
    if future.done():  # the waiting task was cancelled
        return
    if failed:
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
