"""The app factory and its lifespan: engine, Redis, hub and check-in writer open and close here."""

from __future__ import annotations

import logging
import sqlite3
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from redis.exceptions import RedisError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from ingest.batcher import CheckinWriter, WriterUnavailable
from models.db import describe_error, make_engine
from models.errors import DomainError
from models.settings import Settings, load_settings
from realtime.connection import async_client, sync_client
from realtime.hub import Hub
from realtime.occupancy import Occupancy
from realtime.wallboard import Wallboard
from realtime.webpush import load_keys
from web import (
    api_admin,
    api_auth,
    api_citizen,
    api_itinerary,
    api_officials,
    api_photo,
    api_push,
    api_registrar,
    openapi,
    ops,
    pages,
    pages_accounts,
    pages_console,
    pages_official,
    ws,
)
from web.auth import TokenCache
from web.common import SESSION_COOKIE, SESSION_MAX_AGE
from web.lanes import Lanes
from web.ops import LoopWatchdog, prepare_file_table
from web.ratelimit import RateLimiter, TooManyRequests, rate_limited_handler
from web.ratelimit import connect as connect_limiter
from web.responses import domain_error, error
from web.security import SecurityMiddleware
from web.sessions import SessionStore, forget_tokens

log = logging.getLogger("scanbook.web")


def resolve_redis_url(settings: Settings) -> str:
    if settings.redis_url:
        return settings.redis_url
    from realtime.embedded import ensure_embedded_redis

    return ensure_embedded_redis(settings.data_dir)


async def _bootstrap_admin(app: Starlette) -> None:
    """The SCANBOOK_ADMIN_TOKEN admin's row; when the token was changed, the old one's
    browser sessions end."""
    from models.officials import ensure_bootstrap

    def ensure():
        with Session(app.state.engine, expire_on_commit=False) as session:
            try:
                return ensure_bootstrap(session, app.state.settings.admin_token)
            except IntegrityError:  # another process made it at the same moment
                session.rollback()
                return ensure_bootstrap(session, app.state.settings.admin_token)

    try:
        official, changed = await run_in_threadpool(ensure)
    except (OperationalError, DBAPIError) as exc:  # made on first use instead (web/auth.py)
        log.warning("bootstrap admin not checked at start-up: %s", exc)
        return
    if changed:
        log.info("the bootstrap admin's token changed; ending its sessions")
        await app.state.sessions.end_all("official", official.id)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    prepare_file_table()  # before the connections come (web/ops.py)
    redis_url = resolve_redis_url(settings)
    app.state.redis_url = redis_url
    app.state.vapid = load_keys(settings.data_dir)  # made on first start (docs/push.md)
    app.state.engine = make_engine(settings.database_url)
    app.state.redis = sync_client(redis_url, socket_timeout=5, socket_connect_timeout=2)
    app.state.hub = Hub(redis_url)
    await app.state.hub.start()
    app.state.writer = CheckinWriter(app.state.engine, redis_url)
    await app.state.writer.start()
    app.state.tokens = TokenCache()
    app.state.sessions = SessionStore(async_client(redis_url, socket_timeout=5,
                                                   socket_connect_timeout=2), SESSION_MAX_AGE)
    app.state.hub.on_access = forget_tokens(app.state.tokens)
    await _bootstrap_admin(app)
    app.state.limiter = RateLimiter(connect_limiter(redis_url))
    app.state.wallboard = Wallboard(app.state.engine)  # runs while a wallboard is connected
    # counts a venue's open stays while one of its feeds is open here
    app.state.occupancy = Occupancy(app.state.hub, app.state.engine)
    app.state.watchdog = LoopWatchdog()
    app.state.watchdog.start()
    try:
        yield
    finally:
        await app.state.watchdog.stop()
        await app.state.wallboard.stop()
        await app.state.occupancy.stop()
        await app.state.writer.stop()
        await app.state.hub.stop()
        await app.state.limiter.close()
        await app.state.sessions.close()
        app.state.redis.close()
        app.state.engine.dispose()


async def _domain_error(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, DomainError)
    return domain_error(exc)


async def _http_error(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated",
             403: "forbidden"}
    response = error(codes.get(exc.status_code, "validation_error"), str(exc.detail),
                     exc.status_code)
    response.headers.update(exc.headers or {})  # e.g. Allow on a 405
    return response


async def _out_of_range(request: Request, exc: Exception) -> Any:
    # A value from the request the database cannot take: a number past its integers
    # (OverflowError in SQLite, DataError in PostgreSQL) or text with NUL characters.
    return error("validation_error", "数值超出范围或含无效字符 / a value is out of range or "
                 "contains invalid characters")


async def _unavailable(request: Request, exc: Exception) -> Any:
    log.warning("dependency unavailable: %s", describe_error(exc))
    response = error("unavailable", "服务暂时不可用，请稍后重试 / service temporarily "
                     "unavailable, please retry shortly")
    response.headers["Retry-After"] = "2"
    return response


async def _integrity(request: Request, exc: Exception) -> Any:
    return error("conflict", "与已有记录冲突 / conflicts with an existing record")


async def _internal(request: Request, exc: Exception) -> Any:
    if isinstance(exc, DBAPIError):
        # Its message may quote a row's values (PostgreSQL's DETAIL: "Failing row contains
        # (…)"): where it happened, and the driver's first line only.
        log.error("unhandled error on %s: %s\n%s", request.url.path, describe_error(exc),
                  "".join(traceback.format_tb(exc.__traceback__)))
    else:
        log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return error("internal_error", "服务器内部错误 / internal server error")


def create_app(settings: Settings | None = None) -> Any:
    """Build the app; settings are read from the environment unless given."""
    settings = settings or load_settings()
    routes = [
        *api_citizen.hot_routes,
        *ops.routes,
        *openapi.routes,
        *api_admin.routes,
        *api_officials.routes,
        *api_registrar.routes,
        *api_citizen.routes,
        *api_itinerary.routes,
        *api_auth.routes,
        *api_photo.routes,
        *api_push.routes,
        *ws.routes,
        *pages.routes,
        *pages_console.routes,
        *pages_official.routes,
        *pages_accounts.routes,
        Mount("/static", StaticFiles(packages=[("web", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=settings.secret,
                session_cookie=SESSION_COOKIE,
                max_age=SESSION_MAX_AGE,
                same_site="lax",
                https_only=settings.production,
            ),
            # Inside the session middleware: CSRF checks read the session.
            Middleware(SecurityMiddleware, production=settings.production,
                       public_url=settings.public_url),
        ],
        exception_handlers={
            TooManyRequests: rate_limited_handler,
            DomainError: _domain_error,
            HTTPException: _http_error,
            IntegrityError: _integrity,
            OperationalError: _unavailable,
            DBAPIError: _unavailable,
            # Statements run on the raw DBAPI cursor (the check-in hot path) raise these.
            sqlite3.OperationalError: _unavailable,
            psycopg.OperationalError: _unavailable,
            WriterUnavailable: _unavailable,
            RedisError: _unavailable,
            ConnectionError: _unavailable,
            OverflowError: _out_of_range,
            DataError: _out_of_range,
            Exception: _internal,
        },
    )
    app.state.settings = settings
    return Lanes(app, settings)
