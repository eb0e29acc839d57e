"""Operations: /healthz and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import resource
import time

from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models.db import SQLITE_BUSY_SECONDS
from web.protocols import Totals as Writes
from web.responses import JSON

_HUB = Gauge("scanbook_hub_connections", "WebSocket connections subscribed in this process")
_BATCHES = Gauge("scanbook_checkin_batches", "Check-in batches committed by this process")
_ROWS = Gauge("scanbook_checkins_written", "Check-ins written by this process")
_GAPS = Gauge("scanbook_feed_gaps",
              "Feed batches this process missed and resynced from the database")
_LOOP_STALLS = Gauge("scanbook_loop_stalls",
                     "Times this process's event loop woke LOOP_STALL_SECONDS or more late")
_WRITER_RESTARTS = Gauge("scanbook_checkin_writer_restarts",
                         "Check-in writer processes started after one died (this process)")
_WRITES = Gauge("scanbook_writes",
                "Answer heads, bodies and WebSocket frames this process wrote (web/protocols.py)")
_SOCKET_WRITES = Gauge("scanbook_socket_writes",
                       "Socket writes they took: one a connection a loop turn")


log = logging.getLogger("scanbook.ops")
# The watchdog's tick, and how late a tick must be to count as a stall: every request in the
# process waited that long (a blocking call on the loop, or the process starved of CPU).
LOOP_TICK_SECONDS = 0.1
LOOP_STALL_SECONDS = 0.1


# Kept in production: each doubling of a threaded process's file table stalls the event loop
# for an RCU grace period (5-21 ms measured, bench/README.md) in the middle of a wave of new
# connections; grown once at start-up it never grows in service. 8 bytes a slot, 512 KB at most.
FILE_TABLE_MAX = 65_536


def prepare_file_table(size: int | None = None) -> int:
    """Raise the soft open-files limit to the hard one, as Go programs do (a soft limit of
    1,024, common, caps a web process at about a thousand connections), and grow the file
    table to `size` descriptors now (default: the limit, at most FILE_TABLE_MAX). Returns
    the size reserved (0: none)."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if size is None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        size = FILE_TABLE_MAX if soft == resource.RLIM_INFINITY else min(soft, FILE_TABLE_MAX)
    if size <= 0:
        return 0
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        # The lowest free descriptor at or above size - 1 (never one in use): taking it grows
        # the table to hold it, and the table keeps its size once it is closed.
        high = fcntl.fcntl(fd, fcntl.F_DUPFD, size - 1)
        os.close(high)
    except OSError as exc:  # over the limit: the table grows as it fills instead
        log.warning("could not reserve a file table of %d: %s", size, exc)
        return 0
    finally:
        os.close(fd)
    return size


class LoopWatchdog:
    """Wakes every LOOP_TICK_SECONDS and logs (and counts) the ticks that came late."""

    def __init__(self):
        self.stalls = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loop-watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            due = time.monotonic() + LOOP_TICK_SECONDS
            await asyncio.sleep(LOOP_TICK_SECONDS)
            if (late := time.monotonic() - due) >= LOOP_STALL_SECONDS:
                self.stalls += 1
                log.warning("event loop stalled: a %.0f ms tick came %.0f ms late",
                            LOOP_TICK_SECONDS * 1e3, late * 1e3)


def _db_ok(engine) -> bool:
    try:
        with engine.connect() as conn:
            if engine.dialect.name != "sqlite":
                conn.execute(text("SELECT 1"))
                return True
            # SQLite reads go on while another process holds the write lock; writes (every
            # scan) do not: ask for the lock, briefly.
            conn.exec_driver_sql("PRAGMA busy_timeout=1000")
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                conn.exec_driver_sql("ROLLBACK")
            finally:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
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
    body = {"status": "ok" if ok else "unavailable", "database": db, "redis": rds,
            "hub": state.hub.connected}
    if not ok:  # the contract's error shape too, like every other 503
        down = " and ".join(name for name, up in (("database", db), ("redis", rds)) if not up)
        body.update(error="unavailable", message=f"{down} unavailable")
    return JSON(body, status_code=200 if ok else 503,
                headers=None if ok else {"Retry-After": "2"})


async def metrics(request: Request) -> Response:
    state = request.app.state
    _HUB.set(state.hub.connections)
    _BATCHES.set(state.writer.batches)
    _ROWS.set(state.writer.rows)
    _GAPS.set(state.hub.gaps)
    _WRITER_RESTARTS.set(state.writer.restarts)
    _LOOP_STALLS.set(state.watchdog.stalls)
    _WRITES.set(Writes.writes)
    _SOCKET_WRITES.set(Writes.socket_writes)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
