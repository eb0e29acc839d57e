"""web/protocols.py: a loop turn's writes to a connection leave in one socket write, in order,
on a real socket pair and through a real uvicorn server started with the project's flags
(HTTP answers and WebSocket frames)."""

from __future__ import annotations

import asyncio
import os
import re
import socket

import httpx2 as httpx
import orjson
import redis

from realtime.events import venue_channel
from tests.realtime.test_processes import _recv, _setup, _ws
from tests.servers import running_server
from web.protocols import GatheringTransport, Totals


class _Sink(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc) -> None:
        self.closed.set()


def test_writes_of_one_turn_leave_together_in_order_and_close_sends_what_is_left():
    async def run():
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
        sink_transport, sink = await loop.create_connection(_Sink, sock=theirs)
        gathering = GatheringTransport(transport, loop)
        before = Totals.socket_writes
        for i in range(30):
            gathering.write(b"frame%02d;" % i)
        assert sink.data == b""  # nothing left before the turn ended
        await asyncio.sleep(0.05)
        one_turn = Totals.socket_writes - before
        received = bytes(sink.data)
        gathering.write(b"last")
        gathering.close()  # flushes first
        await asyncio.wait_for(sink.closed.wait(), 5)
        gathering.write(b"after close")  # dropped, no error
        await asyncio.sleep(0.01)
        sink_transport.close()
        return one_turn, received, bytes(sink.data)

    one_turn, received, everything = asyncio.run(run())
    assert one_turn == 1
    assert received == b"".join(b"frame%02d;" % i for i in range(30))
    assert everything == received + b"last"


def _metric(text: str, name: str) -> float:
    return float(re.search(rf"^{name} (\S+)$", text, re.MULTILINE).group(1))


def test_a_burst_of_feed_events_reaches_the_registrar_in_order_in_few_socket_writes():
    with running_server() as server:
        owner, venue, _books, _guests = _setup(server.url, visitors=0)
        with _ws(server, venue["id"], owner) as ws:
            assert _recv(ws)["type"] == "ready"
            before = httpx.get(f"{server.url}/metrics").text
            events = [{"type": "checkin", "id": 10_000 + i, "venue_id": venue["id"],
                       "name": "张*", "status": "green"} for i in range(40)]
            client = redis.Redis.from_url(os.environ["REDIS_URL"])
            try:
                # One message, forty events: the hub hands them to the feed in one go.
                client.publish(venue_channel(venue["id"]), orjson.dumps(events))
            finally:
                client.close()
            got = [_recv(ws)["id"] for _ in range(40)]
            after = httpx.get(f"{server.url}/metrics").text
    assert got == [e["id"] for e in events]
    writes = _metric(after, "scanbook_writes") - _metric(before, "scanbook_writes")
    sockets = (_metric(after, "scanbook_socket_writes")
               - _metric(before, "scanbook_socket_writes"))
    # The forty frames, and the first /metrics answer's head and body.
    assert writes >= 42
    assert sockets <= 3, (writes, sockets)  # the burst's one, the answer's one, a ping at most


def test_an_answers_head_and_body_leave_in_one_socket_write():
    with running_server() as server, httpx.Client(base_url=server.url) as http:
        before = http.get("/metrics").text
        for _ in range(10):
            assert http.get("/healthz").status_code == 200
        after = http.get("/metrics").text
    writes = _metric(after, "scanbook_writes") - _metric(before, "scanbook_writes")
    sockets = _metric(after, "scanbook_socket_writes") - _metric(before, "scanbook_socket_writes")
    # Eleven answers (ten /healthz and the first /metrics), a head and a body each.
    assert (writes, sockets) == (22, 11)
