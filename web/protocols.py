"""uvicorn's HTTP and WebSocket protocols, with fewer socket writes: the same bytes, in order.

uvicorn writes to the socket as soon as it has bytes (uvloop sends at once when nothing is
queued): an HTTP answer's head and its body are two send(2)s, and a batch of check-ins
reaching a feed (one frame an event: the contract) is one send(2) a frame. On the scan
benchmark the feeds' sends were a third of the feed fan-out's CPU, and every extra send is a
TCP segment for the phone at the other end to take in. These protocols give uvicorn's own a
transport that writes less often:
- WebSocket (`GatheringTransport`): a loop turn's frames leave with one write at the turn's
  end (`call_soon`): a batch of check-ins is one send to each feed.
- HTTP (`PairingTransport`): a write waits for the next one, and both leave together at once
  (an answer's head and body are written in one step of its task); a write nothing follows
  leaves at the turn's end. Holding answers for the whole turn made each wait for the loop's
  next poll, and a client that sends its next request on the answer waited with it.

Used by name: `uvicorn --http web.protocols:HttpProtocol --ws web.protocols:WebSocketProtocol`
(web.cli.UVICORN_FLAGS, the Procfile). They rely only on asyncio's public protocol and
transport interfaces: uvicorn's protocols are `asyncio.Protocol`s handed their transport in
`connection_made`, which reach the socket only through it (an upgrade hands the WebSocket
protocol the HTTP protocol's transport). tests/web/test_protocols.py checks this against the
installed uvicorn.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class Totals:
    """This process's writes: `writes` asked for by uvicorn (an answer's head, its body, a
    WebSocket frame each), `socket_writes` made (GET /metrics)."""

    writes = 0
    socket_writes = 0


class GatheringTransport(asyncio.Transport):
    """Wraps a transport: `write` gathers, the loop turn's end writes them all at once; every
    other call flushes first where order matters (close, write_eof) and is passed through."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        Totals.writes += 1
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, list_of_data) -> None:
        for data in list_of_data:
            self.write(data)

    def detach(self) -> asyncio.Transport:
        """The wrapped transport, after writing what is pending (a protocol upgrade)."""
        self.flush()
        return self._transport

    def flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        if not self._transport.is_closing():
            Totals.socket_writes += 1
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name, default=None):
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class PairingTransport(GatheringTransport):
    """For HTTP answers: a write waits for the next one and both leave together at once (an
    answer's head and its body are written in one step of its task), or at the turn's end
    when nothing follows. Gathering a whole turn instead would hold every answer until the
    loop's next poll: a client that sends its next request on the answer waits that long."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        follows = bool(self._pending and data)
        super().write(data)
        if follows:
            self.flush()


def _gathering(transport: asyncio.BaseTransport, kind: type[GatheringTransport]
               ) -> GatheringTransport:
    if isinstance(transport, GatheringTransport):  # an upgrade: the HTTP protocol's
        transport = transport.detach()
    return kind(transport, asyncio.get_running_loop())


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a PairingTransport."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(_gathering(transport, PairingTransport))


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's default WebSocket protocol (websockets' sans-I/O core) on a
    GatheringTransport."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(_gathering(transport, GatheringTransport))
