"""Serving a numbered feed over a WebSocket: subscribe, replay, ready, live — nothing twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import anyio
import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from realtime.hub import RESYNC, Hub

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

Replay = Callable[[int, int], Awaitable[list[dict]]]  # (after, limit) -> events, oldest first


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

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.count = 0

    def hit(self) -> bool:
        now = time.monotonic()
        if now - self.start >= FLOOD_SECONDS:
            self.start, self.count = now, 0
        self.count += 1
        return self.count > FLOOD_MESSAGES


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


async def serve_feed(
    websocket: WebSocket,
    hub: Hub,
    channels: tuple[str, ...],
    *,
    after: int | None,
    replay: Replay,
    head: Callable[[], Awaitable[int]],
) -> None:
    """Run an accepted WebSocket as a live feed until either side ends it.

    Events with an "id" are numbered (ids increase per feed in commit order); the connection
    sends each once. Subscribing before replaying means nothing falls in between.
    """
    flood = _Flood()
    async with hub.subscribe(*channels) as sub:
        last = await head() if after is None else await _replay(websocket, replay, after)
        await _send(websocket, {"type": "ready", "last_id": last})

        async def writer() -> None:
            nonlocal last
            queue = sub.queue
            while True:
                if queue.empty():  # the timer only when there is nothing to send yet
                    try:
                        event = await asyncio.wait_for(queue.get(), PING_SECONDS)
                    except TimeoutError:
                        await _send(websocket, {"type": "ping"})
                        continue
                else:
                    event = queue.get_nowait()
                if event is RESYNC:
                    last = await _replay(websocket, replay, last)
                    continue
                event_id = event.get("id")
                if event_id is not None:
                    if event_id <= last:
                        continue
                    last = event_id
                await _send(websocket, event)

        async def reader() -> None:
            reason = None
            while reason is None:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                reason = _refusal(message, flood)
            await websocket.close(code=reason[0], reason=reason[1])

        async with anyio.create_task_group() as tg:

            async def run(fn: Callable[[], Awaitable[None]]) -> None:
                try:
                    await fn()
                except (WebSocketDisconnect, RuntimeError, OSError):
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(run, writer)
            tg.start_soon(run, reader)
