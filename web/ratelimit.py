"""Fixed-window rate limits in Redis, shared by every web process.

    limiter = request.app.state.limiter
    await limiter.hit("scan", principal.citizen_id, limit=settings.scan_rate_per_min)

`hit` counts one request of `ident` in the bucket's current window and raises `TooManyRequests`
(the contract's 429 `rate_limited`, with `Retry-After`) past `limit`: one script call (INCR,
EXPIRE on the first hit), one round trip shared by the hits that arrive together. A limit of
0 or less turns the bucket off. `count` starts the same and returns the verdict's future
without waiting for it: a scan goes on to the check-in writer meanwhile, which waits for the
verdict before writing it (realtime/ingest.py), so the round trip overlaps the batch's linger.

When Redis is slow or down the limiter lets requests through (scans must keep working while
Redis restarts) and stops asking it for a few seconds, so an outage costs one short timeout,
not one per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from models.errors import RateLimited
from realtime import resp
from realtime.connection import async_client, is_sentinel_url
from web.responses import error

log = logging.getLogger("scanbook.ratelimit")

# Redis answers in well under a millisecond; a limiter that waits longer than this is
# slowing the scan it guards more than it protects it.
TIMEOUT = 0.25
# Connections a process keeps for limit checks: each check holds one for a single round trip.
POOL_SIZE = 64
# After a failure, requests pass unchecked for this long before Redis is asked again.
BACKOFF = 5.0


class TooManyRequests(RateLimited):
    """429 rate_limited; `retry_after` is the whole seconds until the window ends."""

    def __init__(self, retry_after: int):
        super().__init__("请求过于频繁，请稍后再试 / too many requests, please retry later")
        self.retry_after = retry_after


def connect(url: str):
    """An async client for limit checks, short timeouts, no retries: the lean client
    (realtime/resp.py) for a plain Redis URL, else redis-py's with a bounded pool."""
    if resp.supports(url):
        return resp.LeanRedis(url, timeout=TIMEOUT)
    options = {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT,
               "retry": Retry(NoBackoff(), 0)}
    if is_sentinel_url(url):
        return async_client(url, **options)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=POOL_SIZE, timeout=TIMEOUT, **options)
    return aioredis.Redis.from_pool(pool)


# Counts a batch of hits in one call: INCR each key, EXPIRE it on its first hit (ARGV[i] is
# KEYS[i]'s TTL): one round trip for every hit in flight.
_COUNT = """
local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ARGV[i]) end
  out[i] = n
end
return out
"""


class RateLimiter:
    """Hits that arrive together share one script call (like the check-ins' group commit): one
    round trip in flight at a time, so a busy process pays Redis's per-call cost once per
    batch instead of once per request. A quiet one sends each hit at once; a busy one (the
    last call ended within BUSY_SECONDS) lingers LINGER_SECONDS before the next, so that a
    steady stream of scans shares calls too: a call costs the web process ~80 µs of CPU plus
    ~5 µs a hit (calls of 1, 5 and 20 hits, one after another, against a local Redis), and a
    scan's verdict is only needed when the check-in writer takes its batch, which lingers as
    long (realtime/ingest.py)."""

    LINGER_SECONDS = 0.001
    BUSY_SECONDS = 0.05

    def __init__(self, client: aioredis.Redis, *, prefix: str = "sb:rl"):
        self.client = client
        self.prefix = prefix
        self._skip_until = 0.0
        # (key, its TTL, the verdict's future, the limit, when the window ends)
        self._pending: list[tuple[str, int, asyncio.Future, int, int]] = []
        self._flusher: asyncio.Task | None = None
        self._last_call = float("-inf")  # when the last script call ended (loop clock)

    async def hit(self, bucket: str, ident: object, *, limit: int, window: int = 60) -> int:
        """Count a request; the count so far in this window (0 when unchecked), or raise
        TooManyRequests when it is past `limit`."""
        verdict = self.count(bucket, ident, limit=limit, window=window)
        if verdict is None:
            return 0
        result = await verdict
        if isinstance(result, TooManyRequests):
            raise result
        return result

    def count(self, bucket: str, ident: object, *, limit: int, window: int = 60
              ) -> asyncio.Future | None:
        """Count a request now; the future of its verdict: the count so far in this window
        (0 when unchecked), or the TooManyRequests to answer with (a value, not the future's
        exception: nobody has to be there to retrieve it). None when unchecked."""
        if limit <= 0:
            return None
        now = time.time()
        if now < self._skip_until:
            return None
        slot = int(now // window)
        future = asyncio.get_running_loop().create_future()
        # The key names its window, so it only has to outlive it.
        self._pending.append((f"{self.prefix}:{bucket}:{ident}:{slot}", window + 1, future,
                              limit, (slot + 1) * window))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="ratelimit-flush")
        return future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                if loop.time() - self._last_call < self.BUSY_SECONDS:
                    await asyncio.sleep(self.LINGER_SECONDS)
                batch, self._pending = self._pending, []
                try:
                    # EVAL, not EVALSHA: the script is 250 bytes, and Redis keeps it compiled.
                    counts = await self.client.eval(_COUNT, len(batch),
                                                    *[entry[0] for entry in batch],
                                                    *[entry[1] for entry in batch])
                except (RedisError, OSError, TimeoutError) as exc:
                    if time.time() >= self._skip_until:
                        log.warning("rate limiter unavailable, not limiting for %.0f s: %s",
                                    BACKOFF, exc)
                    self._skip_until = time.time() + BACKOFF
                    counts = [0] * len(batch)  # unchecked
                self._last_call = loop.time()
                now = time.time()
                for (_, _, future, limit, ends), count in zip(batch, counts, strict=True):
                    if not future.done():  # its request may have been cancelled
                        future.set_result(TooManyRequests(max(1, math.ceil(ends - now)))
                                          if count > limit else count)
        finally:
            self._flusher = None

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        for entry in self._pending:
            entry[2].cancel()
        await self.client.aclose()


async def rate_limited_handler(request: Request, exc: Exception) -> Response:
    """The exception handler for TooManyRequests: the contract's error and Retry-After."""
    assert isinstance(exc, TooManyRequests)
    response = error(exc.code, exc.message, retry_after=exc.retry_after)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response
