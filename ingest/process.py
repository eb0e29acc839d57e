"""The check-in writer process: forked from a fork server, fed over a socket pair.

The web process (ingest/batcher.py) sends a batch and reads its answer: one framed message
each way, a 4-byte length and an orjson document (ingest/wire.py). The writer runs
`BatchWriter` on the other core; on SQLite a thread of its own checkpoints the WAL. It exits
when the web process closes the socket (or dies).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import select
import signal
import socket
import struct
import threading
import time

import redis
from sqlalchemy.engine import Engine

from ingest import wire
from ingest.limits import connect_sync
from ingest.publisher import PUBLISH_REPLY_SECONDS
from ingest.writer import SLOW_BATCH_SECONDS, BatchWriter
from models.checkins import CheckinResult
from models.crypto import Keyring, keyring, use_keyring
from models.db import CHECKPOINT_SECONDS, checkpoint, describe_error, make_engine
from models.errors import DomainError
from realtime.connection import KeptConnection, sync_client

log = logging.getLogger("scanbook.ingest")
# How long stop() waits for the writer to finish its batch and exit before killing it.
STOP_SECONDS = 10.0


class Child:
    """The writer process, seen from the web process: its process and its end of the
    socket pair. Messages are a 4-byte length and an orjson document, one reply a request."""

    _context = None

    def __init__(self, process, sock: socket.socket):
        self.process = process
        self._sock = sock
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @classmethod
    def start(cls, database_url: str, redis_url: str) -> Child:
        parent_end, child_end = socket.socketpair()
        process = _context().Process(
            target=child_main, name="scanbook-checkin-writer", daemon=True,
            args=(child_end, database_url, redis_url, dict(os.environ), keyring()))
        try:
            process.start()
        finally:
            child_end.close()
        return cls(process, parent_end)

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(sock=self._sock)

    def alive(self) -> bool:
        """Its socket is open at both ends (a writer that exits closes its end: EOF here)."""
        return (self._reader is not None and not self._reader.at_eof()
                and not self._writer.is_closing())

    async def call(self, message: bytes) -> bytes:
        self._writer.write(struct.pack("!I", len(message)) + message)
        size = struct.unpack("!I", await self._reader.readexactly(4))[0]
        return await self._reader.readexactly(size)

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()

    async def stop(self) -> None:
        """Close its socket (the writer exits after its batch), wait, kill if it hangs."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        else:
            self._sock.close()
        await asyncio.to_thread(self._join)

    def _join(self) -> None:
        self.process.join(STOP_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


# The writer's PUBLISH connection: a publish is sent under the venues' feed order, so a Redis
# that does not answer must not hold it for long; the database has the batch and the feeds
# resync, so giving up after PUBLISH_TIMEOUT loses nothing (docs/redis-clients.md).
PUBLISH_TIMEOUT = 1.0


def publish_client(redis_url: str) -> redis.Redis:
    return sync_client(redis_url, socket_timeout=PUBLISH_TIMEOUT,
                       socket_connect_timeout=PUBLISH_TIMEOUT)


def _context():
    """The fork server: a clean process that has imported this module, which forks each
    writer in a few ms. Not the web process itself: a fork of a process with an event loop
    and threads inherits their locks mid-use."""
    if Child._context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["ingest.process"])
        Child._context = ctx
    return Child._context


def child_main(sock: socket.socket, database_url: str, redis_url: str, environ: dict,
                ring: Keyring) -> None:
    """The writer process: a batch in, its results out, until the web process closes the
    socket (or dies). SQLite: a thread checkpoints the WAL in the background."""
    # Ctrl-C reaches the whole process group: the web process stops us (closes the socket)
    # once the batches accepted before it have been written.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.clear()
    os.environ.update(environ)
    use_keyring(ring)
    # What was inherited from the fork server lives as long as we do: keep the collector's
    # full collections from walking it (a pause in the middle of a batch).
    gc.freeze()
    _yield_to_the_loop()
    engine = make_engine(database_url)
    client = KeptConnection(publish_client(redis_url))
    limits_client = KeptConnection(connect_sync(redis_url))
    writer = BatchWriter(engine, client, limits_client)
    stop = threading.Event()
    if writer.sqlite:
        threading.Thread(target=_checkpoints, args=(engine, stop), daemon=True,
                         name="wal-checkpoint").start()
    try:
        while (message := _next_message(writer, sock)) is not None:
            _handle(writer, sock, message)
    finally:
        stop.set()
        writer.close()
        client.close()
        limits_client.close()
        engine.dispose()


def _yield_to_the_loop() -> None:
    """Linux: SCHED_BATCH, so that a batch arriving does not preempt the event loop that
    sent it (the loop finishes its turn, or another core takes us): on 2 cores the loop's
    run-queue wait fell in 5 of 6 interleaved pairs of bench.scan (0.092 against 0.105)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def _checkpoints(engine: Engine, stop: threading.Event) -> None:
    """Checkpoint the log every CHECKPOINT_SECONDS, so no batch's commit pays the
    checkpoint's fsyncs (models.db.checkpoint: PASSIVE, RESTART when long)."""
    while not stop.wait(CHECKPOINT_SECONDS):
        started = time.monotonic()
        try:
            checkpoint(engine)
        except Exception as exc:  # busy or away: the next round, or the backstop, will do
            log.debug("WAL checkpoint skipped: %s", exc)
        if (took := time.monotonic() - started) > SLOW_BATCH_SECONDS:
            log.warning("slow WAL checkpoint: %.0f ms", took * 1e3)


def _next_message(writer: BatchWriter, sock: socket.socket) -> bytes | None:
    """The next batch from the web process. While waiting for it, read the replies to the
    PUBLISHes sent and let the venues go once they are all in (BatchWriter.settle); a
    batch that comes first is written straight away, the lock still held."""
    while writer.holding:
        fd = writer.publisher.fileno()
        left = writer.publisher.sent_at + PUBLISH_REPLY_SECONDS - time.monotonic()
        if fd is None or left <= 0:
            if fd is not None:  # no reply in PUBLISH_REPLY_SECONDS: Redis is away
                writer.publisher.give_up()
            writer.settle()
            break
        ready, _, _ = select.select([sock, fd], [], [], left)
        if sock in ready:
            break
        writer.publisher.read(wait=False)
    return _recv(sock)


def _handle(writer: BatchWriter, sock: socket.socket, message: bytes) -> None:
    """Write one batch and send its answer (the moment its PUBLISH is sent)."""
    requests = wire.decode_requests(message)
    answered = False

    def answer(results: list[CheckinResult | DomainError]) -> None:
        nonlocal answered
        answered = True  # sent or not: the batch is committed (a failed send ends us anyway)
        _send(sock, wire.encode_answer(results))

    try:
        writer.write(requests, answer)
    except Exception as exc:
        if answered:  # the batch is committed and answered; only the PUBLISH failed after
            log.warning("check-in batch answered, then failed: %s", describe_error(exc))
            return
        log.warning("check-in batch failed in the writer: %s", describe_error(exc))
        _send(sock, wire.encode_failure(exc))


def _recv(sock: socket.socket) -> bytes | None:
    head = _read_exactly(sock, 4)
    if head is None:
        return None
    return _read_exactly(sock, struct.unpack("!I", head)[0])


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        try:
            chunk = sock.recv(min(left, 1 << 20))
        except (ConnectionError, OSError):
            return None
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _send(sock: socket.socket, message: bytes) -> None:
    sock.sendall(struct.pack("!I", len(message)) + message)
