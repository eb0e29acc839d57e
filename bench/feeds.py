"""Registrar feeds for the benchmark: `websockets` clients that stamp every frame on arrival.

Frames are only stamped and kept while the load runs (parsing waits until the end), so the
watcher's own work delays the stamps as little as possible.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import orjson
from websockets.asyncio.client import ClientConnection, connect


@dataclass
class Feed:
    venue_id: int
    index: int
    ws: ClientConnection | None = None
    frames: list[tuple[float, str | bytes]] = field(default_factory=list)
    task: asyncio.Task | None = None
    closed_early: str | None = None
    closing: bool = False

    def checkins(self) -> list[tuple[int, float]]:
        """(check-in id, arrival time) of every check-in frame, in arrival order."""
        out = []
        for stamp, raw in self.frames:
            event = orjson.loads(raw)
            if event.get("type") == "checkin":
                out.append((event["id"], stamp))
        return out

    def last_id(self) -> int:
        for _, raw in reversed(self.frames):
            event = orjson.loads(raw)
            if event.get("type") == "checkin":
                return event["id"]
        return 0


async def _read(feed: Feed) -> None:
    frames = feed.frames
    try:
        while True:
            raw = await feed.ws.recv()
            frames.append((time.monotonic(), raw))
    except Exception as exc:  # closed by the server (a finding) or by us at the end
        if not feed.closing:
            feed.closed_early = repr(exc)


async def open_feeds(ws_url: str, tokens: dict[int, list[str]]) -> list[Feed]:
    """Connect every registrar's feed and wait for its `ready` frame."""
    feeds = []
    for venue_id, venue_tokens in tokens.items():
        for i, token in enumerate(venue_tokens):
            ws = await connect(f"{ws_url}/ws/venues/{venue_id}/feed",
                               additional_headers={"Authorization": f"Bearer {token}"},
                               max_size=2**20, max_queue=None, ping_interval=None)
            while True:
                first = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                if first.get("type") == "ready":
                    break
            feed = Feed(venue_id, i, ws)
            feed.task = asyncio.create_task(_read(feed))
            feeds.append(feed)
    return feeds


async def close_feeds(feeds: list[Feed]) -> None:
    for feed in feeds:
        feed.closing = True
        if feed.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(feed.ws.close(), 2)
        if feed.task is not None:
            feed.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await feed.task


async def wait_for_ids(feeds: list[Feed], last_by_venue: dict[int, int], *, quiet: float = 3.0,
                       timeout: float = 30.0) -> None:
    """Wait until every feed has shown its venue's last committed id, or nothing arrives for
    `quiet` seconds (then what is missing counts as lost)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(feed.last_id() >= last_by_venue.get(feed.venue_id, 0) for feed in feeds):
            return
        newest = max((f.frames[-1][0] for f in feeds if f.frames), default=0.0)
        if time.monotonic() - newest > quiet:
            return
        await asyncio.sleep(0.2)
