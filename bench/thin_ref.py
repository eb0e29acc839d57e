"""The thin reference: the least a scan endpoint could do — parse the JSON body, PUBLISH it to
Redis, answer 201. No auth, no database, no feed. Served by the same uvicorn flags as the app,
so `accepted scans/s ÷ this` is the price of everything Scanbook does on top.

    REDIS_URL=redis://127.0.0.1:6379/0 uvicorn bench.thin_ref:app --loop uvloop --http httptools
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

CHANNEL = "bench:thin"


class JSON(Response):
    media_type = "application/json"

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # A blocking pool: hundreds of requests at once wait for one of its connections (the
    # default pool refuses past its size: MaxConnectionsError, a 500).
    pool = aioredis.BlockingConnectionPool.from_url(os.environ["REDIS_URL"], max_connections=64)
    app.state.redis = aioredis.Redis.from_pool(pool)
    app.state.seq = 0
    try:
        yield
    finally:
        await app.state.redis.aclose()


async def scan(request: Request) -> Response:
    body = orjson.loads(await request.body())
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str):
        return JSON({"error": "validation_error", "message": "code is required"}, 422)
    request.app.state.seq += 1
    event = {"type": "checkin", "seq": request.app.state.seq, "code": code}
    await request.app.state.redis.publish(CHANNEL, orjson.dumps(event))
    return JSON({"accepted": True, "seq": event["seq"]}, status_code=201)


async def healthz(request: Request) -> Response:
    return JSON({"ok": True})


app = Starlette(
    routes=[Route("/api/scan", scan, methods=["POST"]), Route("/healthz", healthz)],
    lifespan=lifespan,
)
