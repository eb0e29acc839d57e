"""Rate limits in the web process, shared by every web process through Redis.

    limiter = request.app.state.limiter
    await limiter.hit("otp-send-min", phone, limit=SEND_PER_MINUTE)

`hit` counts one request of `ident` in the bucket's current window and raises `TooManyRequests`
(the contract's 429 `rate_limited`, with `Retry-After`) past `limit`: one script call
(ingest/limits.py: the keys, the script, failing open), one round trip shared by the hits
that arrive together. A limit of 0 or less turns the bucket off. A scan that reaches the
check-in writer is counted there, with its batch (ingest/limits.py's ScanCounter); only the
scans refused before that are counted here (web/api_citizen.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from ingest.limits import COUNT_SCRIPT, TIMEOUT, Backoff, verdict, window_key
from models.errors import TooManyRequests
from realtime.connection import async_client, is_sentinel_url
from web.responses import error

# Connections a process keeps for limit checks: each check holds one for a single round trip.
POOL_SIZE = 64

__all__ = ["RateLimiter", "TooManyRequests", "connect", "rate_limited_handler"]


def connect(url: str) -> aioredis.Redis:
    """An async client for limit checks: short timeouts, no retries, a bounded pool. (Not on
    a scan's path any more: the check-in writer counts the scans, ingest/limits.py.)"""
    options = {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT,
               "retry": Retry(NoBackoff(), 0)}
    if is_sentinel_url(url):
        return async_client(url, **options)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=POOL_SIZE, timeout=TIMEOUT, **options)
    return aioredis.Redis.from_pool(pool)


class RateLimiter:
    """Hits that arrive together share one script call (like the check-ins' group commit): one
    round trip in flight at a time, so a burst pays Redis's per-call cost once."""

    def __init__(self, client: aioredis.Redis):
        self.client = client
        self.backoff = Backoff("requests")
        # (key, its TTL, the verdict's future, the limit, when the window ends)
        self._pending: list[tuple[str, int, asyncio.Future, int, int]] = []
        self._flusher: asyncio.Task | None = None

    async def hit(self, bucket: str, ident: object, *, limit: int, window: int = 60) -> int:
        """Count a request; the count so far in this window (0 when unchecked), or raise
        TooManyRequests when it is past `limit`."""
        if limit <= 0:
            return 0
        now = time.time()
        if self.backoff.active(now):
            return 0
        key, ttl, ends = window_key(bucket, ident, window, now)
        future = asyncio.get_running_loop().create_future()
        self._pending.append((key, ttl, future, limit, ends))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="ratelimit-flush")
        result = await future
        if isinstance(result, TooManyRequests):
            raise result
        return result

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    # EVAL, not EVALSHA: the script is 250 bytes, and Redis keeps it compiled.
                    counts = await self.client.eval(COUNT_SCRIPT, len(batch),
                                                    *[entry[0] for entry in batch],
                                                    *[entry[1] for entry in batch])
                except (RedisError, OSError, TimeoutError) as exc:
                    self.backoff.failed(exc)
                    counts = [0] * len(batch)  # unchecked
                now = time.time()
                for (_, _, future, limit, ends), count in zip(batch, counts, strict=True):
                    if not future.done():  # its request may have been cancelled
                        future.set_result(verdict(count, limit, ends, now))
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
