"""Operations: /healthz and /metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from web.responses import JSON

_HUB = Gauge("scanbook_hub_connections", "WebSocket connections subscribed in this process")
_BATCHES = Gauge("scanbook_checkin_batches", "Check-in batches committed by this process")
_ROWS = Gauge("scanbook_checkins_written", "Check-ins written by this process")


def _db_ok(engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def _redis_ok(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


async def healthz(request: Request) -> Response:
    state = request.app.state
    db = await run_in_threadpool(_db_ok, state.engine)
    rds = await run_in_threadpool(_redis_ok, state.redis)
    ok = db and rds
    return JSON({"status": "ok" if ok else "unavailable", "database": db, "redis": rds,
                 "hub": state.hub.connected}, status_code=200 if ok else 503)


async def metrics(request: Request) -> Response:
    state = request.app.state
    _HUB.set(state.hub.connections)
    _BATCHES.set(state.writer.batches)
    _ROWS.set(state.writer.rows)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
