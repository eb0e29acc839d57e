"""Per-process resources for jobs, opened lazily inside the worker (after RQ's fork)."""

from __future__ import annotations

import os
from functools import lru_cache

import redis
from sqlalchemy.engine import Engine

from models.db import NOTICE_LOCK, FeedLock, make_engine
from models.settings import Settings, load_settings
from realtime.connection import sync_client


@lru_cache(maxsize=1)
def _cached(pid: int) -> tuple[Settings, Engine, redis.Redis, FeedLock]:
    settings = load_settings()
    engine = make_engine(settings.database_url)
    url = settings.redis_url or os.environ.get("REDIS_URL")
    if not url:
        from realtime.embedded import ensure_embedded_redis

        url = ensure_embedded_redis(settings.data_dir)
    return settings, engine, sync_client(url), FeedLock(engine, NOTICE_LOCK)


def resources() -> tuple[Settings, Engine, redis.Redis, FeedLock]:
    """Settings, engine, Redis client and notice lock of this process (a forked child gets
    its own: connections must never cross a fork)."""
    return _cached(os.getpid())


def reset() -> None:
    _cached.cache_clear()
