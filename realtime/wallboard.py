"""The wallboard's crowding frames: one aggregator per process, broadcast to its wallboards.

While at least one wallboard is connected, a task computes `models.crowding.crowding` every
INTERVAL in the thread pool, encodes it once and hands the frame to every connection — no
query per connection. A connection holds only the newest frame: a slow screen skips frames,
it never queues them. With no wallboard connected nothing runs and the minute cache is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import anyio
import orjson
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from models.crowding import MinuteCache, crowding
from models.db import describe_error
from models.tables import utcnow
from realtime.feed import PING_SECONDS, read_until_refused

log = logging.getLogger("scanbook.wallboard")

# The contract promises a frame at least once a second; every half second keeps that promise
# through a slow query or a busy event loop, and the board's clock never visibly stalls.
INTERVAL = 0.5
PING = orjson.dumps({"type": "ping"}).decode()


class Mailbox:
    """The newest frame for one connection (older unsent frames are dropped)."""

    def __init__(self) -> None:
        self._frame: str | None = None
        self._ready = asyncio.Event()

    def put(self, frame: str) -> None:
        self._frame = frame
        self._ready.set()

    async def get(self, timeout: float) -> str | None:
        """The newest frame, or None when none came within `timeout` seconds."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return None
        self._ready.clear()
        frame, self._frame = self._frame, None
        return frame


class Wallboard:
    def __init__(self, engine: Engine, *, interval: float = INTERVAL,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.interval = interval
        self.clock = clock
        self.latest: str | None = None
        self.ticks = 0
        self.failures = 0
        self._boxes: set[Mailbox] = set()
        self._task: asyncio.Task | None = None

    @property
    def connections(self) -> int:
        return len(self._boxes)

    @property
    def running(self) -> bool:
        return self._task is not None

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Mailbox]:
        """A connection's mailbox; the first wallboard starts the aggregator, the last stops
        it."""
        box = Mailbox()
        self._boxes.add(box)
        if self.latest is not None:
            box.put(self.latest)  # a new screen shows the current picture at once
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="wallboard")
        try:
            yield box
        finally:
            self._boxes.discard(box)
            if not self._boxes:
                await self.stop()

    async def stop(self) -> None:
        task, self._task = self._task, None
        self.latest = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _compute(self, cache: MinuteCache) -> dict:
        with self.engine.connect() as conn:
            return crowding(conn, now=self.clock(), cache=cache)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        cache = MinuteCache()
        due = loop.time()
        while True:
            try:
                frame = orjson.dumps(await run_in_threadpool(self._compute, cache)).decode()
            except Exception as exc:  # the database is away: screens see their data age
                self.failures += 1
                if self.failures == 1 or self.failures % 120 == 0:
                    log.warning("wallboard: crowding query failed (%d): %s", self.failures,
                                describe_error(exc))
                cache = MinuteCache()
            else:
                self.latest = frame
                self.ticks += 1
                for box in list(self._boxes):
                    box.put(frame)
            due += self.interval
            delay = due - loop.time()
            if delay < 0:  # fell behind (a slow query): carry on from now, no burst
                due, delay = loop.time(), 0
            await asyncio.sleep(delay)


async def serve_wallboard(websocket: WebSocket, board: Wallboard,
                          view: Callable[[dict], dict] | None = None) -> None:
    """Run an accepted WebSocket as a wallboard until either side ends it: crowding frames
    as they come, a ping every PING_SECONDS; client messages are ignored (or, when abusive,
    end the connection as on the feeds)."""
    async with board.subscribe() as box:

        async def writer() -> None:
            pinged = time.monotonic()
            while True:
                frame = await box.get(PING_SECONDS)
                if frame is not None:
                    if view is not None:  # a district's view of the city's frame
                        frame = orjson.dumps(view(orjson.loads(frame))).decode()
                    await websocket.send_text(frame)
                if time.monotonic() - pinged >= PING_SECONDS:
                    await websocket.send_text(PING)
                    pinged = time.monotonic()

        async def reader() -> None:
            await read_until_refused(websocket)

        async with anyio.create_task_group() as tg:

            async def run(fn: Callable[[], Awaitable[None]]) -> None:
                try:
                    await fn()
                except (WebSocketDisconnect, RuntimeError, OSError):
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(run, writer)
            tg.start_soon(run, reader)
