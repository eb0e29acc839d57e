"""Redis clients from a URL: one place, so every process follows a Sentinel failover.

Two forms of `REDIS_URL`:

- `redis://[[user]:password@]host:port/db` (and `rediss://`, `unix://`): one server, exactly
  what `redis.Redis.from_url` accepts.
- `redis+sentinel://[[user]:password@]host1:26379,host2:26379,host3:26379/mymaster[/db]`
  (`rediss+sentinel://` for TLS to the data nodes): ask those Sentinels where the master of
  the service `mymaster` is, and ask again whenever a connection to it breaks, so after a
  failover every client reconnects to the promoted replica by itself. The user and password
  are the data nodes' (`requirepass`); add `?sentinel_password=...` when the Sentinels
  themselves require one. The port defaults to 26379.

The clients are the ordinary `redis.Redis` / `redis.asyncio.Redis` classes (RQ, pipelines
and pub/sub work unchanged); closing one also closes its connections to the Sentinels.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import NoBackoff
from redis.connection import SSLConnection
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection
from redis.utils import SENTINEL

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
DEFAULT_SENTINEL_PORT = 26379
# Asking a Sentinel is one short round trip; a dead Sentinel must not stall the search
# for the master longer than this before the next one is tried (and no retries on the same
# Sentinel: the next Sentinel in the list is the retry).
_SENTINEL_TIMEOUT = 1.0


class _MasterConnection(SentinelManagedConnection):
    """redis-py's sync Sentinel connection, but dropped when a read is interrupted.

    Unlike every other redis-py connection class, the sync `SentinelManagedConnection`
    defaults `disconnect_on_error` to False: a read cut short by an exception (RQ's warm
    shutdown interrupts its blocking BLMOVE so) goes back to the pool with the reply still
    pending, and the next command on it waits behind that BLMOVE for minutes.
    """

    def read_response(self, disable_decoding=False, *, timeout=SENTINEL,
                      disconnect_on_error=True, push_request=False):
        return super().read_response(disable_decoding, timeout=timeout,
                                     disconnect_on_error=disconnect_on_error,
                                     push_request=push_request)


class _MasterSSLConnection(_MasterConnection, SSLConnection):
    pass


class SentinelRedis(redis.Redis):
    """A master client that also closes its Sentinel connections on close()."""

    def close(self) -> None:
        super().close()
        manager = getattr(self.connection_pool, "sentinel_manager", None)
        if manager is not None:
            manager.close()


class AsyncSentinelRedis(aioredis.Redis):
    """The asyncio twin of `SentinelRedis`."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        manager = getattr(self.connection_pool, "sentinel_manager", None)
        if manager is not None:
            await manager.aclose()


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SENTINEL_SCHEMES


def parse_sentinel_url(url: str) -> dict[str, Any]:
    """Split a `redis+sentinel://` URL into sentinels, service, db and credentials."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in SENTINEL_SCHEMES:
        raise ValueError(f"not a Sentinel URL: {url!r}")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, _, pwd = userinfo.partition(":")
        username, password = unquote(user) or None, unquote(pwd) or None
    sentinels = [_host_port(item) for item in hosts.split(",") if item.strip()]
    if not sentinels:
        raise ValueError(f"no Sentinel hosts in {url!r}")
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError(f"expected /<service>[/<db>] in {url!r}")
    service = unquote(path[0])
    try:
        db = int(path[1]) if len(path) == 2 else 0
    except ValueError:
        raise ValueError(f"the database must be a number in {url!r}") from None
    query = parse_qs(parts.query)
    return {
        "sentinels": sentinels,
        "service": service,
        "db": db,
        "username": username,
        "password": password,
        "sentinel_password": (query.get("sentinel_password") or [None])[0],
        "ssl": parts.scheme.lower().startswith("rediss"),
    }


def _host_port(item: str) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # [::1]:26379
        host, _, rest = item[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
    return host, int(port) if port else DEFAULT_SENTINEL_PORT


def _sentinel_args(url: str, kw: dict[str, Any], retry: Any) -> tuple[list, str, dict, dict]:
    spec = parse_sentinel_url(url)
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": _SENTINEL_TIMEOUT,
        "socket_connect_timeout": _SENTINEL_TIMEOUT,
        "retry": retry,
    }
    if spec["sentinel_password"]:
        sentinel_kwargs["password"] = spec["sentinel_password"]
    node_kwargs = {"db": spec["db"], **kw}
    for key in ("username", "password"):
        if spec[key] is not None:
            node_kwargs.setdefault(key, spec[key])
    if spec["ssl"]:
        node_kwargs["ssl"] = True
    return spec["sentinels"], spec["service"], sentinel_kwargs, node_kwargs


def sync_client(url: str, **kw: Any) -> redis.Redis:
    """A `redis.Redis` for `url`; through Sentinel when the URL says so."""
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **kw)
    sentinels, service, sentinel_kwargs, node_kwargs = _sentinel_args(
        url, kw, Retry(NoBackoff(), 0))
    node_kwargs["connection_class"] = (
        _MasterSSLConnection if node_kwargs.pop("ssl", False) else _MasterConnection)
    manager = Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs)
    return manager.master_for(service, redis_class=SentinelRedis, **node_kwargs)


def async_client(url: str, **kw: Any) -> aioredis.Redis:
    """A `redis.asyncio.Redis` for `url`; through Sentinel when the URL says so."""
    if not is_sentinel_url(url):
        return aioredis.from_url(url, **kw)
    sentinels, service, sentinel_kwargs, node_kwargs = _sentinel_args(
        url, kw, AsyncRetry(NoBackoff(), 0))
    manager = AsyncSentinel(sentinels, sentinel_kwargs=sentinel_kwargs)
    return manager.master_for(service, redis_class=AsyncSentinelRedis, **node_kwargs)


class KeptConnection:
    """One connection of `client`, kept by a caller that sends one command at a time (the
    check-in writer's PUBLISH and rate-limit counts). It stands in for the client where only
    its `connection_pool` is used (events.publish, limits.ScanCounter): get_connection()
    always hands out the same connection and release() keeps it. redis-py's own pool checks
    a connection out and health-checks it (a poll) on every call. A batch's count and
    PUBLISH took 123-213 µs of client CPU kept against 183-282 µs through the pool (three
    interleaved rounds of 4,000, an uncommitted micro-benchmark against the machine's Redis).

    The connection is made on first use, so this can be built while Redis is down; after a
    failure the caller disconnect()s it and the next get_connection() reconnects it."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self.connection_pool = self
        self._conn = None

    def get_connection(self):
        if self._conn is None:
            self._conn = self.client.connection_pool.get_connection()
        else:
            # A no-op while connected. After a disconnect() it reconnects as the pool would:
            # a Sentinel connection asks where the master is now. (Left to the next command,
            # redis-py 8 would reconnect to the old address, however long the failover.)
            self._conn.connect()
        return self._conn

    def release(self, conn) -> None:
        """Kept for the next command (a broken one reconnects when it is next used)."""

    def close(self) -> None:
        if self._conn is not None:
            self.client.connection_pool.release(self._conn)
            self._conn = None
        self.client.close()


__all__ = ["KeptConnection", "async_client", "is_sentinel_url", "parse_sentinel_url",
           "sync_client"]
