"""A lean asyncio Redis client for the two commands on every scan's path: EVAL (the rate
limiter) and PUBLISH (the check-in batch).

redis-py spends ~90 µs of CPU on a command (its connection pool, retries, event dispatch and
observability hooks; measured with and without hiredis on this machine), more than a whole
scan's HTTP handling. A scan costs the event loop one limiter call per group of scans and one
publish per batch, so at a quiet venue that is a third of a scan's CPU. This client writes the
command's bytes on one connection and matches replies to waiting futures in order (commands
pipeline freely): ~10 µs.

Only what those two callers need: plain `redis://[:password@]host:port/db` and `unix://` URLs
(a Sentinel or TLS URL gets redis-py's client instead: `supports()`), replies of the RESP2
kinds. A broken connection fails every waiting command with `redis.ConnectionError`, and the
next command connects again; a command unanswered within `timeout` raises `redis.TimeoutError`
and drops the connection (its late reply must not answer the next command).
"""

from __future__ import annotations

import asyncio
import collections
from urllib.parse import parse_qs, unquote, urlsplit

from redis import exceptions as rx

_CRLF = b"\r\n"


def supports(url: str) -> bool:
    return urlsplit(url).scheme.lower() in ("redis", "unix")


def encode(args: tuple) -> bytes:
    """A command as RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class _Incomplete(Exception):
    pass


def _parse(buf: bytearray, pos: int):
    """(reply, next position) of the reply at `pos`; _Incomplete when it has not all come."""
    end = buf.find(_CRLF, pos)
    if end < 0:
        raise _Incomplete
    kind, line = buf[pos], bytes(buf[pos + 1:end])
    pos = end + 2
    if kind == 0x2B:  # +simple
        return line, pos
    if kind == 0x2D:  # -error
        return rx.ResponseError(line.decode(errors="replace")), pos
    if kind == 0x3A:  # :integer
        return int(line), pos
    if kind == 0x24:  # $bulk
        size = int(line)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise _Incomplete
        return bytes(buf[pos:pos + size]), pos + size + 2
    if kind == 0x2A:  # *array
        count = int(line)
        if count < 0:
            return None, pos
        items = []
        for _ in range(count):
            item, pos = _parse(buf, pos)
            items.append(item)
        return items, pos
    raise rx.ConnectionError(f"unexpected reply from Redis: {bytes(buf[pos - 2:pos + 20])!r}")


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: LeanRedis):
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self.buf = bytearray()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos = 0
        try:
            while pos < len(buf):
                reply, pos = _parse(buf, pos)
                future = self.waiting.popleft()
                if not future.done():
                    if isinstance(reply, rx.ResponseError):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        except _Incomplete:
            pass
        except (rx.ConnectionError, IndexError, ValueError) as exc:
            self.fail(rx.ConnectionError(f"Redis protocol error: {exc}"))
            if self.transport is not None:
                self.transport.abort()
            return
        del buf[:pos]

    def connection_lost(self, exc) -> None:
        self.fail(rx.ConnectionError(f"connection to Redis lost: {exc or 'closed'}"))
        if self.owner._protocol is self:
            self.owner._protocol = None

    def fail(self, exc: Exception) -> None:
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)


class LeanRedis:
    """`publish(channel, data)`, `eval(script, numkeys, *keys_and_args)`, `aclose()`."""

    def __init__(self, url: str, *, timeout: float = 1.0):
        parts = urlsplit(url)
        self.unix = parts.scheme.lower() == "unix"
        self.path = parts.path
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.password = unquote(parts.password) if parts.password else None
        self.username = unquote(parts.username) if parts.username else None
        query = parse_qs(parts.query)
        if self.unix:
            self.db = int((query.get("db") or ["0"])[0])
        else:
            self.db = int(parts.path.strip("/") or 0)
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future | None = None

    async def _connected(self) -> _Protocol:
        if self._protocol is not None:
            return self._protocol
        if self._connecting is None:  # one connection attempt, shared by every caller
            self._connecting = asyncio.ensure_future(self._connect())
        try:
            return await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                if self.unix:
                    _, protocol = await loop.create_unix_connection(
                        lambda: _Protocol(self), self.path)
                else:
                    _, protocol = await loop.create_connection(
                        lambda: _Protocol(self), self.host, self.port)
                hello = []
                if self.password:
                    hello.append(("AUTH", self.username, self.password) if self.username
                                 else ("AUTH", self.password))
                if self.db:
                    hello.append(("SELECT", self.db))
                for reply in await self._send(protocol, hello):
                    if isinstance(reply, Exception):
                        raise reply
        except OSError as exc:
            raise rx.ConnectionError(f"cannot reach Redis at {self._where()}: {exc}") from exc
        except TimeoutError as exc:
            raise rx.TimeoutError(f"Redis at {self._where()} did not answer") from exc
        self._protocol = protocol
        return protocol

    def _where(self) -> str:
        return self.path if self.unix else f"{self.host}:{self.port}"

    @staticmethod
    async def _send(protocol: _Protocol, commands: list[tuple]) -> list:
        if not commands:
            return []
        if protocol.transport is None or protocol.transport.is_closing():
            raise rx.ConnectionError("connection to Redis closed")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in commands]
        protocol.waiting.extend(futures)
        protocol.transport.write(b"".join(encode(c) for c in commands))
        return await asyncio.gather(*futures, return_exceptions=True)

    async def execute(self, *args):
        """One command's reply; redis.ResponseError for an error reply."""
        protocol = await self._connected()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        transport = protocol.transport
        if transport is None or transport.is_closing():
            raise rx.ConnectionError("connection to Redis closed")
        protocol.waiting.append(future)
        transport.write(encode(args))
        try:
            async with asyncio.timeout(self.timeout):
                return await future
        except TimeoutError as exc:
            # The reply may still come: the connection must not be used again.
            transport.abort()
            raise rx.TimeoutError(f"Redis at {self._where()} did not answer in time") from exc

    async def publish(self, channel: str, data: bytes) -> int:
        return await self.execute("PUBLISH", channel, data)

    async def eval(self, script: str, numkeys: int, *keys_and_args) -> object:
        return await self.execute("EVAL", script, numkeys, *keys_and_args)

    async def aclose(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
