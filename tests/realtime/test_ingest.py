"""The check-in writer on SQLite writes on the event loop, but never waits there: while another
connection holds the write lock the batch steps aside, the loop keeps running, and the scan
is written as soon as the lock is free."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time

import pytest

from models.checkins import CheckinRequest
from realtime.connection import sync_client
from realtime.ingest import CheckinWriter


@pytest.fixture
def sqlite_engine(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("the inline writer is SQLite's (PostgreSQL batches go to a thread)")
    return engine


HOLD = 1.0  # seconds another connection holds SQLite's write lock


def _hold_write_lock(path: str, seconds: float, held: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    conn.execute("BEGIN IMMEDIATE")
    held.set()
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


def test_a_held_write_lock_delays_the_batch_not_the_loop(sqlite_engine, client, people,
                                                         venue_with_logbook):
    _owner, _venue, book = venue_with_logbook
    visitor = people.make("赵六")
    redis = sync_client(os.environ["REDIS_URL"])

    async def run():
        writer = CheckinWriter(sqlite_engine, redis, redis_url=os.environ["REDIS_URL"])
        assert writer.inline
        await writer.start()
        held = threading.Event()
        holder = threading.Thread(target=_hold_write_lock,
                                  args=(sqlite_engine.url.database, HOLD, held))
        holder.start()
        assert held.wait(10), "the other connection never got the write lock"
        ticks: list[float] = []

        async def tick():
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        started = time.monotonic()
        try:
            result = await writer.submit(CheckinRequest(citizen_id=visitor["id"],
                                                        code=book["token"]))
            waited = time.monotonic() - started
        finally:
            ticker.cancel()
            holder.join()
            await writer.stop()
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        return result, waited, max(gaps), writer.batches

    try:
        result, waited, longest_gap, batches = asyncio.run(run())
    finally:
        redis.close()
    assert result.created and result.checkin["logbook_id"] == book["id"]
    assert HOLD - 0.2 < waited < HOLD + 3.0  # written once the lock was let go, not before
    # The loop went on meanwhile: a blocked loop would show one gap of about HOLD. (Not much
    # tighter: this VM's host sometimes stalls a process for a couple of hundred ms.)
    assert longest_gap < HOLD / 2
    assert batches == 1
