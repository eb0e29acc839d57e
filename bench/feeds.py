"""Registrar feeds for the benchmark: minimal WebSocket clients that stamp every frame on arrival.

The feeds run on the same two cores as the server they measure, so, like the load generator
(bench/loadgen.py), they are raw asyncio protocols rather than a client library: a handshake,
then every chunk the socket gives is stamped once and cut into frames by their headers (RFC
6455 §5.2). The JSON inside is parsed only after the run, and the server's pings are answered
with pongs. A `websockets` client did the same work at several times the CPU a frame, time the
server under test did not get (bench/README.md, Findings).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
_TEXT, _BINARY, _CONTINUATION, _CLOSE, _PING = 0x1, 0x2, 0x0, 0x8, 0x9
_MAX_HEAD = 16384  # bytes of handshake answer before the client gives up


@dataclass
class Feed:
    venue_id: int
    index: int
    protocol: _FeedProtocol | None = None
    frames: list[tuple[float, bytes]] = field(default_factory=list)
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


class _FeedProtocol(asyncio.Protocol):
    """One feed's connection: the upgrade's answer, then frames appended to `feed.frames` as
    (arrival, payload). Text and binary messages are kept (a fragmented one once whole),
    pings answered, a close from the server answered and noted in `feed.closed_early`."""

    def __init__(self, feed: Feed, key: bytes):
        self.feed = feed
        self.accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.fragments: list[bytes] = []  # a message's frames before its last
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()
        self.arrived: asyncio.Event = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        stamp = time.monotonic()
        buf = self.buffer + data if self.buffer else data
        if not self.upgraded:
            buf = self._upgrade(buf)
            if buf is None:
                return
        frames, pos, size = self.feed.frames, 0, len(buf)
        before = len(frames)
        while size - pos >= 2:
            first, length = buf[pos], buf[pos + 1]
            if length & 0x80:
                self._fail("the server masked a frame")
                return
            head = 2
            if length == 126:
                head = 4
                length = int.from_bytes(buf[pos + 2:pos + 4], "big") if size - pos >= 4 else -1
            elif length == 127:
                head = 10
                length = int.from_bytes(buf[pos + 2:pos + 10], "big") if size - pos >= 10 else -1
            if length < 0 or size - pos < head + length:
                break  # the rest of this frame is still on its way
            payload = buf[pos + head:pos + head + length]
            pos += head + length
            opcode = first & 0x0F
            if opcode in (_TEXT, _BINARY, _CONTINUATION):
                if not first & 0x80:  # not the last fragment
                    self.fragments.append(payload)
                    continue
                if self.fragments:
                    payload, self.fragments = b"".join([*self.fragments, payload]), []
                frames.append((stamp, payload))
            elif opcode == _PING:
                self._send(0xA, payload)  # pong
            elif opcode == _CLOSE:
                if not self.feed.closing and self.feed.closed_early is None:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                    self.feed.closed_early = (f"closed by the server: {code} "
                                              f"{payload[2:].decode(errors='replace')}")
                self._send(_CLOSE, payload[:2])
                self.transport.close()
                return
        self.buffer = buf[pos:]
        if len(frames) != before:
            self.arrived.set()

    def _upgrade(self, buf: bytes) -> bytes | None:
        """The handshake's answer: the bytes after it, or None (incomplete, or refused)."""
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > _MAX_HEAD:
                self._fail("no end to the handshake's answer")
            else:
                self.buffer = buf
            return None
        status, *lines = buf[:end].decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip()
                   for name, _, value in (line.partition(":") for line in lines)}
        if status.split(" ", 2)[1:2] != ["101"]:
            self._fail(f"upgrade refused: {status}")
            return None
        if headers.get("sec-websocket-accept", "").encode() != self.accept:
            self._fail("wrong Sec-WebSocket-Accept")
            return None
        self.upgraded = True
        self.opened.set_result(None)
        return buf[end + 4:]

    def _send(self, opcode: int, payload: bytes) -> None:
        """A control frame (≤ 125 bytes), masked as a client's must be."""
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.transport.write(bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked)

    def _fail(self, why: str) -> None:
        if not self.feed.closing and self.feed.closed_early is None:
            self.feed.closed_early = why
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(why))
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.feed.closing and self.feed.closed_early is None:
            self.feed.closed_early = f"connection lost: {exc!r}"
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"connection lost: {exc!r}"))
        if not self.closed.done():
            self.closed.set_result(None)
        self.arrived.set()

    def close(self) -> None:
        """Start the closing handshake (1000); the server answers and closes the socket."""
        self._send(_CLOSE, (1000).to_bytes(2, "big"))


async def open_feed(ws_url: str, path: str, token: str, feed: Feed) -> None:
    """Connect `feed` and wait for its `ready` frame (dropped with what came before it)."""
    url = urlsplit(ws_url)
    key = base64.b64encode(os.urandom(16))
    loop = asyncio.get_running_loop()
    _transport, protocol = await loop.create_connection(
        lambda: _FeedProtocol(feed, key), url.hostname, url.port)
    feed.protocol = protocol
    protocol.transport.write(
        f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
        f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    await asyncio.wait_for(protocol.opened, 10)
    deadline = loop.time() + 10
    while True:
        for i, (_, raw) in enumerate(feed.frames):
            if orjson.loads(raw).get("type") == "ready":
                del feed.frames[:i + 1]
                return
        if feed.closed_early:
            raise ConnectionError(feed.closed_early)
        protocol.arrived.clear()
        await asyncio.wait_for(protocol.arrived.wait(), max(0.0, deadline - loop.time()))


async def open_feeds(ws_url: str, tokens: dict[int, list[str]]) -> list[Feed]:
    """Connect every registrar's feed and wait for its `ready` frame."""
    feeds = []
    for venue_id, venue_tokens in tokens.items():
        for i, token in enumerate(venue_tokens):
            feed = Feed(venue_id, i)
            await open_feed(ws_url, f"/ws/venues/{venue_id}/feed", token, feed)
            feeds.append(feed)
    return feeds


async def close_feeds(feeds: list[Feed]) -> None:
    for feed in feeds:
        feed.closing = True
        if feed.protocol is not None:
            feed.protocol.close()
    for feed in feeds:
        if feed.protocol is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(feed.protocol.closed), 2)
            feed.protocol.transport.abort()


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
