"""What the route modules share: sessions, the notice feed lock, and writing then publishing.

Imports no route module and not web.app, so route modules import it and nothing runs in a
circle. The one place a route writes something its clients hear of is `write_then_publish`:
the write, the commit, then the publish (STYLE.md habit 6).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Connection
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.convertors import IntegerConvertor, register_url_convertor
from starlette.requests import Request

from models.db import NOTICE_LOCK, FeedLock
from realtime.events import publish

T = TypeVar("T")
Events = list[tuple[str, dict]]  # (channel, event) pairs, published in this order

SESSION_COOKIE = "scanbook_session"
SESSION_MAX_AGE = 14 * 24 * 3600  # SessionMiddleware's default


class _IdConvertor(IntegerConvertor):
    """`{id:int}` in every route: ids are `integer` columns (32-bit in PostgreSQL), so a
    number past 2147483647 names nothing (404) instead of failing in the database."""

    regex = ("[0-9]{1,9}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}"
             "|2147[0-3][0-9]{5}|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}"
             "|21474836[0-3][0-9]|214748364[0-7]")


# Here, not in web.app: every route module imports this module before it compiles its paths.
register_url_convertor("int", _IdConvertor())


async def in_session(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a domain function with a fresh session in the thread pool."""
    engine = request.app.state.engine

    def call() -> T:
        with Session(engine, expire_on_commit=False) as session:
            return fn(session, *args, **kwargs)

    return await run_in_threadpool(call)


def notice_lock(app: Any) -> FeedLock:
    """This process's notice FeedLock (created on first use, from the event loop)."""
    lock = getattr(app.state, "notice_lock", None)
    if lock is None:
        lock = app.state.notice_lock = FeedLock(app.state.engine, NOTICE_LOCK)
    return lock


async def write_then_publish(request: Request, write: Callable[[Connection], tuple[T, Events]],
                             *, notices: bool = True) -> T:
    """Run `write(conn)` (it returns its result and the events to publish), commit, then
    publish the events: the one way a route writes what clients hear of. `notices`: the write
    inserts into the numbered notice feed, so it holds the notice lock from the insert to the
    publish (ids reach every client in increasing order)."""
    engine, client = request.app.state.engine, request.app.state.redis
    lock = notice_lock(request.app) if notices else None

    def run() -> T:
        with engine.connect() as conn, (lock.hold(conn) if lock else contextlib.nullcontext()):
            result, events = write(conn)
            conn.commit()
            publish(client, events)
        return result

    return await run_in_threadpool(run)
