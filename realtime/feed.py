"""Serving a numbered feed over a WebSocket: subscribe, replay, ready, live — nothing twice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import anyio
import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from realtime.hub import RESYNC, Hub

PING_SECONDS = 20.0  # the contract promises a ping at least every 30 s
PAGE = 500
MAX_CLIENT_FRAME = 4096  # clients only send small control messages

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
    async with hub.subscribe(*channels) as sub:
        last = await head() if after is None else await _replay(websocket, replay, after)
        await _send(websocket, {"type": "ready", "last_id": last})

        async def writer() -> None:
            nonlocal last
            while True:
                try:
                    event = await asyncio.wait_for(sub.queue.get(), PING_SECONDS)
                except TimeoutError:
                    await _send(websocket, {"type": "ping"})
                    continue
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
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("text") or message.get("bytes") or ""
                if len(data) > MAX_CLIENT_FRAME:
                    await websocket.close(code=1009, reason="frame too large")
                    return

        async with anyio.create_task_group() as tg:

            async def run(fn: Callable[[], Awaitable[None]]) -> None:
                try:
                    await fn()
                except (WebSocketDisconnect, RuntimeError, OSError):
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(run, writer)
            tg.start_soon(run, reader)
