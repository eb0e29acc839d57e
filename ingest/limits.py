"""Fixed-window rate-limit counters in Redis, shared by every process.

One key per (bucket, who, window): `sb:rl:{bucket}:{ident}:{slot}`, INCRed per request and
expiring after its window. Two clients count in the same keys:

- the web processes' `RateLimiter` (web/ratelimit.py), for OTP, 他人代查 and scans refused
  before they reach the check-in writer;
- the check-in writer (ingest/writer.py), which counts every scan of a batch in one call
  (`ScanCounter`): sent before the batch's look-ups, its reply read after them, so the round
  trip costs a batch nothing and the web process nothing at all.

Both let requests through when Redis is slow or down (scans must keep working while Redis
restarts) and stop asking it for BACKOFF seconds, so an outage costs one short timeout.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from models.errors import DomainError, TooManyRequests
from realtime.connection import sync_client

log = logging.getLogger("scanbook.ratelimit")

PREFIX = "sb:rl"
# Redis answers in well under a millisecond; a limiter that waits longer than this is
# slowing the request it guards more than it protects it.
TIMEOUT = 0.25
# After a failure, requests pass unchecked for this long before Redis is asked again.
BACKOFF = 5.0
SCAN_BUCKET = "scan"
SCAN_WINDOW = 60

# Counts a batch of hits in one call: INCR each key, EXPIRE it on its first hit (ARGV[i] is
# KEYS[i]'s TTL): one round trip for every hit in flight.
COUNT_SCRIPT = """
local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ARGV[i]) end
  out[i] = n
end
return out
"""


def window_key(bucket: str, ident: object, window: int, now: float) -> tuple[str, int, int]:
    """(the key counting `ident` in `bucket`'s current window, its TTL, when the window
    ends). The key names its window, so it only has to outlive it."""
    slot = int(now // window)
    return f"{PREFIX}:{bucket}:{ident}:{slot}", window + 1, (slot + 1) * window


def verdict(count: int, limit: int, ends: int, now: float) -> int | TooManyRequests:
    """The count, or the refusal to answer with when it is past `limit`."""
    return TooManyRequests(max(1, math.ceil(ends - now))) if count > limit else count


class Backoff:
    """Fail open: after a failure, stop asking Redis for BACKOFF seconds, with one warning
    an outage rather than one a request."""

    def __init__(self, what: str):
        self.what = what  # what goes unlimited meanwhile, for the warning
        self._until = 0.0

    def active(self, now: float) -> bool:
        return now < self._until

    def failed(self, exc: Exception) -> None:
        now = time.time()
        if now >= self._until:
            log.warning("rate limiter unavailable, not limiting %s for %.0f s: %s",
                        self.what, BACKOFF, exc)
        self._until = now + BACKOFF


def connect_sync(url: str) -> redis.Redis:
    """The writer's client for ScanCounter: TIMEOUT, no retries (it fails open instead)."""
    return sync_client(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
                       retry=Retry(NoBackoff(), 0))


class ScanCounter:
    """The check-in writer's side: the scans of a batch, counted in one script call.

        with counter.send(requests) as verdicts:   # sent before the look-ups
            ...
            refused = verdicts()                   # {index: TooManyRequests}, before the insert

    Synchronous (the writer is), on a client of its own (`connect_sync`)."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self.backoff = Backoff("scans")

    def send(self, requests: Sequence) -> Verdicts:
        """Count the requests that carry a limit (`request.limit` > 0) now."""
        now = time.time()
        limited = [(i, r.limit) for i, r in enumerate(requests) if r.limit > 0]
        if not limited or self.backoff.active(now):
            return Verdicts(self, None, [], [])
        keys = [window_key(SCAN_BUCKET, requests[i].citizen_id, SCAN_WINDOW, now)
                for i, _ in limited]
        conn = None
        try:
            conn = self.client.connection_pool.get_connection()
            conn.send_command("EVAL", COUNT_SCRIPT, len(keys), *[key for key, _, _ in keys],
                              *[ttl for _, ttl, _ in keys])
        except (redis.RedisError, OSError) as exc:
            self.failed(conn, exc)
            return Verdicts(self, None, [], [])
        return Verdicts(self, conn, limited, keys)

    def failed(self, conn, exc: Exception | None) -> None:
        """Drop `conn` (its reply is not coming, or not wanted); with `exc`, back off."""
        if conn is not None:
            conn.disconnect()
            self.client.connection_pool.release(conn)
        if exc is not None:
            self.backoff.failed(exc)


class Verdicts:
    """A batch's counts on their way back: call it for the refusals (once); leaving the
    `with` block hands the connection back (dropped when the reply was never read)."""

    def __init__(self, counter: ScanCounter, conn, limited: list, keys: list):
        self._counter = counter
        self._conn = conn
        self._limited = limited
        self._keys = keys

    def __enter__(self) -> Verdicts:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._conn is not None:  # the batch failed before it needed the verdicts
            conn, self._conn = self._conn, None
            self._counter.failed(conn, None)

    def __call__(self) -> dict[int, DomainError]:
        """{index in the batch: the TooManyRequests it is answered with}."""
        conn, self._conn = self._conn, None
        if conn is None:
            return {}
        try:
            counts = conn.read_response()
        except (redis.RedisError, OSError) as exc:
            self._counter.failed(conn, exc)
            return {}
        self._counter.client.connection_pool.release(conn)
        now = time.time()
        refused: dict[int, DomainError] = {}
        for (i, limit), (_, _, ends), count in zip(self._limited, self._keys, counts,
                                                   strict=True):
            if isinstance(answer := verdict(count, limit, ends, now), TooManyRequests):
                refused[i] = answer
        return refused
