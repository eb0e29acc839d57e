"""Serving a numbered feed over a WebSocket: subscribe, replay, ready, live — nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from realtime.hub import RECHECK, RESYNC, Hub

PING_SECONDS = 20.0  # the contract promises a ping at least every 30 s
PAGE = 500
# What a client may send: feeds only talk to it, so a client has nothing to say beyond an
# occasional small JSON object (ignored). Anything else ends the connection with a close code.
MAX_CLIENT_FRAME = 4096
FLOOD_MESSAGES = 20  # client messages allowed per FLOOD_SECONDS
FLOOD_SECONDS = 10.0
CLOSE_UNSUPPORTED = 1003  # binary frames
CLOSE_POLICY = 1008  # text that is not a JSON object
CLOSE_TOO_BIG = 1009  # over MAX_CLIENT_FRAME (uvicorn's --ws-max-size stops larger ones)
CLOSE_FLOOD = 4429  # more than FLOOD_MESSAGES in FLOOD_SECONDS
CLOSE_INTERNAL = 1011
UNNUMBERED = frozenset({"checkout", "occupancy"})  # events sent as they come, never skipped

log = logging.getLogger("scanbook.feed")

Replay = Callable[[int, int], Awaitable[list[dict]]]  # (after, limit) -> events, oldest first
# Whether the connection's holder may still watch: None, or the (close code, reason) to end
# it with. Asked once the connection is subscribed (so no access change can slip in between)
# and again on every recheck and resync the hub delivers (realtime.events.access_changed).
Recheck = Callable[[], Awaitable[tuple[int, str] | None]]


async def _send(websocket: WebSocket, event: dict) -> None:
    await websocket.send_text(orjson.dumps(event).decode())


async def _replay(websocket: WebSocket, replay: Replay, last: int) -> int:
    while True:
        events = await replay(last, PAGE)
        for event in events:
            if event["id"] > last:
                await _send(websocket, event)
                last = event["id"]
        if len(events) < PAGE:
            return last


class _Flood:
    """Counts a client's messages in fixed windows of FLOOD_SECONDS."""

    __slots__ = ("start", "count")

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.count = 0

    def hit(self) -> bool:
        now = time.monotonic()
        if now - self.start >= FLOOD_SECONDS:
            self.start, self.count = now, 0
        self.count += 1
        return self.count > FLOOD_MESSAGES


async def read_until_refused(websocket: WebSocket) -> None:
    """Read (and ignore) what a client sends until it disconnects; close it with the matching
    code when it sends something a feed does not take (see _refusal)."""
    flood = _Flood()
    reason = None
    while reason is None:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        reason = _refusal(message, flood)
    await websocket.close(code=reason[0], reason=reason[1])


def _refusal(message: dict, flood: _Flood) -> tuple[int, str] | None:
    """The close (code, reason) a client message earns, or None to ignore it."""
    if flood.hit():
        return CLOSE_FLOOD, "too many messages"
    text = message.get("text")
    if text is None:
        return CLOSE_UNSUPPORTED, "text frames only"
    if len(text) > MAX_CLIENT_FRAME:
        return CLOSE_TOO_BIG, "frame too large"
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return CLOSE_POLICY, "JSON objects only"
    return None if isinstance(parsed, dict) else (CLOSE_POLICY, "JSON objects only")


class _Pusher:
    """Sends what the hub delivers to one connection, in order, from a task that exists only
    while there is something to send, and a ping every PING_SECONDS from a timer. An idle
    connection holds neither a task nor a queue: the budget is 30 KB per idle connection,
    and a pair of tasks in a task group (reader and writer) cost more than that alone. The
    reader is the connection's own task (serve_feed); when sending fails the connection is
    closed, which ends the reader; when the reader ends, close() stops the pusher."""

    __slots__ = ("websocket", "sub", "replay", "recheck", "last", "task", "ping_due", "closed",
                 "loop", "timer")

    def __init__(self, websocket: WebSocket, sub, replay: Replay, last: int,
                 recheck: Recheck | None = None):
        self.websocket = websocket
        self.sub = sub
        self.replay = replay
        self.recheck = recheck
        self.last = last
        self.task: asyncio.Task | None = None
        self.ping_due = False
        self.closed = False
        self.loop = asyncio.get_running_loop()
        self.timer = self.loop.call_later(PING_SECONDS, self._ping)
        sub.on_deliver = self._wake
        if sub.pending:  # delivered while replaying
            self._wake()

    def _ping(self) -> None:
        self.ping_due = True
        self.timer = self.loop.call_later(PING_SECONDS, self._ping)
        self._wake()

    def _wake(self) -> None:
        if self.task is None and not self.closed:
            self.task = self.loop.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while True:
                events = self.sub.take()
                if not events and not self.ping_due:
                    self.task = None  # no await since take(): nothing can slip in between
                    return
                if self.ping_due:
                    self.ping_due = False
                    await _send(self.websocket, {"type": "ping"})
                checked = False
                for event in events:
                    if event is RESYNC or event is RECHECK:
                        # A resync may follow a lost Redis connection, and with it a lost
                        # access change: access is rechecked before anything is replayed.
                        if not checked and self.recheck is not None:
                            checked = True
                            refusal = await self.recheck()
                            if refusal is not None:
                                self._stop()
                                await self.websocket.close(code=refusal[0], reason=refusal[1])
                                return
                        if event is RESYNC:
                            self.last = await _replay(self.websocket, self.replay, self.last)
                        continue
                    # A checkout's id is its check-in's: not a position in the feed.
                    event_id = event.get("id") if event.get("type") not in UNNUMBERED else None
                    if event_id is not None:
                        if event_id <= self.last:
                            continue
                        self.last = event_id
                    await _send(self.websocket, event)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._stop()  # the connection is gone; the reader hears it too
        except Exception:
            # The database failed a resync, say: end the connection (1011); the client
            # reconnects with its last id and misses nothing.
            log.exception("feed push failed; closing the connection")
            self._stop()
            with contextlib.suppress(Exception):
                await self.websocket.close(code=CLOSE_INTERNAL, reason="try again")

    def _stop(self) -> None:
        self.closed = True
        self.timer.cancel()
        self.sub.on_deliver = None

    def close(self) -> None:
        self._stop()
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()


async def serve_feed(
    websocket: WebSocket,
    hub: Hub,
    channels: tuple[str, ...],
    *,
    after: int | None,
    replay: Replay,
    head: Callable[[], Awaitable[int]],
    holder: int | None = None,
    recheck: Recheck | None = None,
) -> None:
    """Run an accepted WebSocket as a live feed until either side ends it.

    Events with an "id" are numbered (ids increase per feed in commit order); the connection
    sends each once. Subscribing before replaying means nothing falls in between; checking
    access after subscribing means no access change falls in between either (`recheck`,
    `holder`: see Recheck and Hub.subscribe).
    """
    async with hub.subscribe(*channels, holder=holder) as sub:
        if recheck is not None:
            refusal = await recheck()
            if refusal is not None:
                await websocket.close(code=refusal[0], reason=refusal[1])
                return
        last = await head() if after is None else await _replay(websocket, replay, after)
        await _send(websocket, {"type": "ready", "last_id": last})
        pusher = _Pusher(websocket, sub, replay, last, recheck)
        try:
            await read_until_refused(websocket)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            pusher.close()
