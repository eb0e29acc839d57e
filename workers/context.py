"""Per-process resources for jobs, opened lazily inside the worker (after RQ's fork)."""

from __future__ import annotations

import os
from functools import lru_cache

import redis
from sqlalchemy.engine import Engine

from models.db import NOTICE_LOCK, FeedLock, make_engine
from models.settings import Settings, load_settings
from realtime.connection import sync_client

# Jobs send short commands (PUBLISH, PUBSUB NUMSUB, job meta): a Redis that does not answer
# within this is down, and the job's retry policy takes over (docs/redis-clients.md).
JOB_REDIS_TIMEOUT = 5.0


def redis_url(settings: Settings | None = None) -> str:
    """REDIS_URL, else this data dir's embedded Redis (started if it is not running)."""
    settings = settings or load_settings()
    url = settings.redis_url or os.environ.get("REDIS_URL")
    if not url:
        from realtime.embedded import ensure_embedded_redis

        url = ensure_embedded_redis(settings.data_dir)
    return url


@lru_cache(maxsize=1)
def _cached(pid: int) -> tuple[Settings, Engine, redis.Redis, FeedLock]:
    settings = load_settings()
    engine = make_engine(settings.database_url)
    client = sync_client(redis_url(settings), socket_timeout=JOB_REDIS_TIMEOUT,
                         socket_connect_timeout=JOB_REDIS_TIMEOUT)
    return settings, engine, client, FeedLock(engine, NOTICE_LOCK)


def resources() -> tuple[Settings, Engine, redis.Redis, FeedLock]:
    """Settings, engine, Redis client and notice lock of this process (a forked child gets
    its own: connections must never cross a fork)."""
    return _cached(os.getpid())


def reset() -> None:
    _cached.cache_clear()
