"""The scan benchmark's feed client (bench/feeds.py) against a real WebSocket server of another
implementation (the `websockets` library's): the handshake, frames of every length encoding, a
fragmented message, pings answered, the client's close and the server's, a refused upgrade."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from bench.feeds import Feed, close_feeds, open_feed

# Payload lengths in each of the header's three encodings: 7 bits, 16 bits, 64 bits.
SMALL = b'{"n": 1}'  # binary
MEDIUM = orjson.dumps({"name": "中" * 100}).decode()
LARGE = orjson.dumps({"pad": "y" * 70_000}).decode()


def _run(handler, client):
    """Serve `handler` on a free port, run `client(url)`; return what both returned."""

    def refuse_strangers(connection, request):
        if request.headers.get("Authorization") != "Bearer good":
            return Response(403, "Forbidden", Headers(), b"")
        return None

    async def main():
        async with serve(handler, "127.0.0.1", 0, process_request=refuse_strangers) as server:
            port = server.sockets[0].getsockname()[1]
            return await client(f"ws://127.0.0.1:{port}")

    return asyncio.run(asyncio.wait_for(main(), 20))


def test_frames_arrive_whole_in_order_and_pings_are_answered():
    seen = {}

    async def handler(ws):
        seen["path"] = ws.request.path
        await ws.send(orjson.dumps({"type": "hello"}).decode())  # before ready: dropped
        await ws.send(orjson.dumps({"type": "ready", "last_id": 0}).decode())
        await ws.send(SMALL)
        await ws.send(MEDIUM)
        await ws.send(LARGE)
        await ws.send(['{"type": ', '"frag', 'mented"}'])  # one message in three frames
        seen["pong"] = await asyncio.wait_for(await ws.ping(b"are you there"), 5)
        await ws.send('{"type": "checkin", "id": 7}')
        await ws.wait_closed()
        seen["close_code"] = ws.close_code

    async def client(url):
        feed = Feed(venue_id=1, index=0)
        await open_feed(url, "/ws/venues/1/feed", "good", feed)
        while len(feed.frames) < 5:
            feed.protocol.arrived.clear()
            await asyncio.wait_for(feed.protocol.arrived.wait(), 5)
        await close_feeds([feed])
        return feed

    feed = _run(handler, client)
    assert [raw for _, raw in feed.frames] == [
        SMALL, MEDIUM.encode(), LARGE.encode(), b'{"type": "fragmented"}',
        b'{"type": "checkin", "id": 7}']
    stamps = [stamp for stamp, _ in feed.frames]
    assert stamps == sorted(stamps)
    assert feed.checkins() == [(7, stamps[-1])] and feed.last_id() == 7
    assert seen["path"] == "/ws/venues/1/feed"
    assert seen["pong"] >= 0  # the pong came back (its latency in seconds)
    assert seen["close_code"] == 1000
    assert feed.closed_early is None


def test_a_close_by_the_server_is_noted():
    async def handler(ws):
        await ws.send('{"type": "ready", "last_id": 0}')
        await ws.close(1008, "not yours")

    async def client(url):
        feed = Feed(venue_id=1, index=0)
        await open_feed(url, "/feed", "good", feed)
        await asyncio.wait_for(asyncio.shield(feed.protocol.closed), 5)
        return feed

    feed = _run(handler, client)
    assert feed.closed_early == "closed by the server: 1008 not yours"


def test_a_refused_upgrade_fails_to_open():
    async def handler(ws):  # pragma: no cover - never reached
        await ws.send('{"type": "ready"}')

    async def client(url):
        with pytest.raises(ConnectionError, match="upgrade refused: HTTP/1.1 403"):
            await open_feed(url, "/feed", "bad", Feed(venue_id=1, index=0))
        return True

    assert _run(handler, client)
