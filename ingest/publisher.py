"""The writer's PUBLISHes: sent at once, their replies read while the next batch is written."""

from __future__ import annotations

import contextlib
import logging
import time

import redis

from realtime.connection import KeptConnection
from realtime.events import encode

log = logging.getLogger("scanbook.ingest")

# How long the writer waits for Redis to answer its PUBLISHes before giving them up (the
# hubs then resync from the database, as after any failed publish).
PUBLISH_REPLY_SECONDS = 1.0


class Publisher:
    """The writer's PUBLISHes: each sent at once, its reply read later (BatchWriter.
    settle). One kept connection, so they reach Redis in the order sent. A failure is
    logged and forgotten: the database has the batches, and a hub that misses one resyncs
    its feeds from there (the sequence check, realtime/events.py)."""

    def __init__(self, client: redis.Redis | KeptConnection):
        self.client = client
        self.unread = 0  # PUBLISHes sent whose replies are not read yet
        self.sent_at = 0.0  # when the oldest of them was sent
        self._conn = None

    def send(self, item: tuple[str, dict]) -> None:
        channel, message = item
        for attempt in range(2):  # a dropped connection (Redis restarted) is made again once
            # The replies still awaited come on the connection they were sent on: keep it.
            conn = self._conn or self.client.connection_pool.get_connection()
            self._conn = conn
            try:
                conn.send_packed_command(conn.pack_command("PUBLISH", channel, encode(message)))
            except (redis.RedisError, OSError) as exc:
                # The first try's failure alone is not worth a warning: the retry follows.
                self._failed(exc, quiet=attempt == 0 and not self.unread)
                continue
            if not self.unread:
                self.sent_at = time.monotonic()
            self.unread += 1
            return

    def fileno(self) -> int | None:
        """The socket the replies come on (for select), or None when none is awaited or the
        connection does not say."""
        sock = getattr(self._conn, "_sock", None) if self.unread else None
        return sock.fileno() if sock is not None else None

    def read(self, *, wait: bool) -> None:
        """Read the replies already here (wait=False), or every one awaited (wait=True)."""
        conn = self._conn
        try:
            while self.unread and (wait or conn.can_read(timeout=0)):
                conn.read_response()
                self.unread -= 1
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)
            return
        if not self.unread and conn is not None:
            self._conn = None
            self.client.connection_pool.release(conn)

    def give_up(self) -> None:
        self._failed(TimeoutError(f"no reply in {PUBLISH_REPLY_SECONDS:.0f} s"))

    def _failed(self, exc: Exception, *, quiet: bool = False) -> None:
        """Drop the connection (its replies are lost: the hubs resync) and forget them."""
        if not quiet:
            log.warning("check-in publish failed (%d unanswered): %s; the hubs resync from "
                        "the database", self.unread, exc)
        self.unread = 0
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.disconnect()
            self.client.connection_pool.release(conn)
