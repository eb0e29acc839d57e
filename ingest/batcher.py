"""Group commit for check-ins, on the web process's event loop: scans arriving together
share one batch, which the check-in writer process records, commits and publishes.

The batches are written in a child process (ingest/process.py), not on the event loop or a
thread of it: recording a batch is ~1.5 ms of CPU for twenty rows, and on the loop it stalled
every other request that long, on a thread it fought the busy loop for the GIL. In a process
of its own it runs on the other core; the loop hands over a batch and takes the answers back.

If the writer dies, the batch in flight is answered 503 (it may or may not have been
committed: a retried scan within 60 s gets the same check-in back) and the next batch starts a
new writer. Nothing committed is lost: the hubs find a batch that was committed but never
published by its sequence check (realtime/events.py) and read it from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.engine import Engine

from ingest import wire
from ingest.process import Child
from ingest.wire import WriterUnavailable
from models.checkins import CheckinRequest, CheckinResult
from models.db import describe_error
from models.errors import DomainError

log = logging.getLogger("scanbook.ingest")

__all__ = ["CheckinWriter", "WriterUnavailable"]


class CheckinWriter:
    """Collects check-in requests on the event loop and has the writer process write them in
    batches.

    While one batch is being written the next requests queue up, so a rush gets big batches.
    A scan that finds the writer idle is written at once when traffic is sparse; when the
    writer last wrote within BUSY_SECONDS it lingers LINGER_SECONDS first, so a steady stream
    is written in batches rather than in ones and twos. Each batch costs a transaction (on
    SQLite ~0.5 ms for ten rows: every dirty index page is a WAL write at commit), a publish
    and the hub's and feeds' wake-ups, far more than a row does. The writer holds its
    venues' feed order from insert to publish (ingest/order.py), so ids reach every feed
    in increasing order (resume-safe).
    """

    # A scan waits one to two cycles (the linger plus the writer's ~1 ms a batch): 1 ms gave
    # the lowest latency for no more CPU a scan (bench/README.md, "Findings").
    LINGER_SECONDS = 0.001
    BUSY_SECONDS = 0.05

    def __init__(self, engine: Engine, redis_url: str, *, max_batch: int = 500,
                 linger: float | None = None):
        self.engine = engine
        self.redis_url = redis_url
        self.max_batch = max_batch
        self.linger = self.LINGER_SECONDS if linger is None else linger
        self._last_write = float("-inf")
        # (request, its future, when it arrived on the loop's clock)
        self._pending: list[tuple[CheckinRequest, asyncio.Future, float]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._busy = False  # a batch is with the writer process
        self._child: Child | None = None
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
            if wire.is_unavailable(exc):
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

    async def _ensure_child(self) -> Child:
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
            Child.start, self.engine.url.render_as_string(hide_password=False),
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
            reply = await child.call(wire.encode_requests(requests))
        except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
            if self._child is not None:
                self._child.kill()
            raise WriterUnavailable(
                "登记服务暂时不可用，请重试 / the check-in writer restarted, please retry"
            ) from exc
        results = wire.decode_reply(reply)
        self.batches += 1
        self.rows += sum(1 for r in results if isinstance(r, CheckinResult) and r.created)
        return results
