"""Browser sessions live on the server, in Redis; the signed cookie carries only their id.

A session is `sb:session:<id>` → {"kind": "official"|"citizen", "id": <their id>}, with the
cookie's lifetime; `sb:sessions:<kind>:<id>` lists a principal's sessions so that all of them
can end at once. Ending sessions (sign-out, sign-out everywhere, an official disabled or
their token rotated) deletes the keys, so every web process answers the old cookie 401 on its
next request, and announces an access change (realtime.events.access_message, the channel
feeds already recheck on): every process's token cache first forgets a revoked citizen token
(`forget_tokens`), then the principal's open WebSockets recheck who they are and close 4401
(web/ws.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import orjson
import redis.asyncio as aioredis

from realtime.events import access_message, encode

KEY = "sb:session:"
INDEX = "sb:sessions:"
SESSION_ID_KEY = "sid"  # the cookie's (signed) session holds {"sid": ..., "csrf": ...}


def _ended(kind: str, principal_id: int, token_hash: str | None = None) -> tuple[str, bytes]:
    """The access message that makes a principal's connections recheck."""
    channel, event = access_message(
        citizens=[principal_id] if kind == "citizen" else (),
        officials=[principal_id] if kind == "official" else (),
        tokens=[token_hash] if token_hash else ())
    return channel, encode(event)


class SessionStore:
    def __init__(self, client: aioredis.Redis, max_age: int):
        self.client = client
        self.max_age = max_age

    async def create(self, kind: str, principal_id: int) -> str:
        sid = secrets.token_urlsafe(24)
        index = f"{INDEX}{kind}:{principal_id}"
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(KEY + sid, orjson.dumps({"kind": kind, "id": principal_id}),
                     ex=self.max_age)
            pipe.sadd(index, sid)
            pipe.expire(index, self.max_age)
            await pipe.execute()
        return sid

    async def get(self, sid: object) -> tuple[str, int] | None:
        """(kind, id) of a live session, or None."""
        if not isinstance(sid, str) or not 8 <= len(sid) <= 64:
            return None
        raw = await self.client.get(KEY + sid)
        if raw is None:
            return None
        data = orjson.loads(raw)
        return data["kind"], data["id"]

    async def end(self, sid: str) -> None:
        """Sign-out: this session only."""
        found = await self.get(sid)
        if found is None:
            return
        kind, principal_id = found
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(KEY + sid)
            pipe.srem(f"{INDEX}{kind}:{principal_id}", sid)
            await pipe.execute()
        await self.client.publish(*_ended(kind, principal_id))

    async def end_all(self, kind: str, principal_id: int, *, token_hash: str | None = None
                      ) -> int:
        """Every session of a principal (their WebSockets recheck; a revoked token is
        forgotten everywhere)."""
        index = f"{INDEX}{kind}:{principal_id}"
        sids = [s.decode() if isinstance(s, bytes) else s
                for s in await self.client.smembers(index)]
        async with self.client.pipeline(transaction=True) as pipe:
            for sid in sids:
                pipe.delete(KEY + sid)
            pipe.delete(index)
            await pipe.execute()
        await self.client.publish(*_ended(kind, principal_id, token_hash))
        return len(sids)

    async def close(self) -> None:
        await self.client.aclose()


def end_all_sync(client, kind: str, principal_id: int) -> int:
    """`SessionStore.end_all` from synchronous code (the command line)."""
    index = f"{INDEX}{kind}:{principal_id}"
    sids = [s.decode() if isinstance(s, bytes) else s for s in client.smembers(index)]
    pipe = client.pipeline(transaction=True)
    for sid in sids:
        pipe.delete(KEY + sid)
    pipe.delete(index)
    pipe.execute()
    client.publish(*_ended(kind, principal_id))
    return len(sids)


def forget_tokens(tokens) -> Callable[[dict | None], None]:
    """The hub's on_access hook: a revoked citizen token leaves this process's cache (after
    a reconnect, when an announcement may have been missed, the whole cache goes)."""
    def handle(message: dict | None) -> None:
        if message is None:
            tokens.clear()
            return
        for token_hash in message.get("tokens") or ():
            tokens.forget(token_hash)

    return handle
