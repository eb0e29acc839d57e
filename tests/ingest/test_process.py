"""The check-in writer process: batches are written outside the web process's event loop. A
held write lock delays a batch but never the loop; a writer that dies costs the batch in
flight a 503 (retried, it is the same check-in) and the next batch gets a new writer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sqlite3
import threading
import time

import pytest

from ingest import process
from ingest import writer as ingest_writer
from ingest.batcher import CheckinWriter, WriterUnavailable
from ingest.publisher import PUBLISH_REPLY_SECONDS
from ingest.wire import is_unavailable
from models.checkins import CheckinRequest
from models.db import CHECKIN_LOCK, FeedLock
from realtime.connection import KeptConnection, sync_client
from realtime.events import CHECKINS, decode

HOLD = 1.0  # seconds another connection holds SQLite's write lock


def _hold_write_lock(path: str, seconds: float, held: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    conn.execute("BEGIN IMMEDIATE")
    held.set()
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


def _try_lock(lock: FeedLock, conn, venue_id: int) -> bool:
    """Take and release the venue's feed order if it is free right now (PostgreSQL: its
    advisory lock; SQLite: a non-blocking flock on the one lock file)."""
    if conn.dialect.name == "postgresql":
        conn.rollback()
        key = f"{CHECKIN_LOCK}, {venue_id}"
        taken = conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({key})").scalar()
        if taken:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")
        conn.rollback()
        return bool(taken)
    import fcntl

    with open(lock._file.name) as probe:
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(probe, fcntl.LOCK_UN)
        return True


@contextlib.contextmanager
def _another_writer(engine, venue_id: int):
    """free(): is the venue's feed order free, as another web process's writer would find it
    (it takes it and lets it go again)? PostgreSQL: on a connection of its own."""
    lock = FeedLock(engine, CHECKIN_LOCK)
    with engine.connect() as conn:
        def free() -> bool:
            return _try_lock(lock, conn, venue_id)
        yield free


def test_a_held_write_lock_delays_the_batch_not_the_loop(engine, client, people,
                                                         venue_with_logbook):
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock (PostgreSQL writers take row locks)")
    _owner, _venue, book = venue_with_logbook
    visitor = people.make("赵六")

    async def run():
        writer = CheckinWriter(engine, os.environ["REDIS_URL"])
        await writer.start()
        held = threading.Event()
        holder = threading.Thread(target=_hold_write_lock,
                                  args=(engine.url.database, HOLD, held))
        ticks: list[float] = []

        async def tick():
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        try:
            # The writer process is up (its first batch would otherwise also time its start).
            await writer.submit(CheckinRequest(citizen_id=people.make("钱七")["id"],
                                               code=book["token"]))
            holder.start()
            assert held.wait(10), "the other connection never got the write lock"
            ticker = asyncio.create_task(tick())
            started = time.monotonic()
            try:
                result = await writer.submit(CheckinRequest(citizen_id=visitor["id"],
                                                            code=book["token"]))
                waited = time.monotonic() - started
            finally:
                ticker.cancel()
        finally:
            if holder.is_alive() or held.is_set():
                holder.join()
            await writer.stop()
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        return result, waited, max(gaps), writer.batches

    result, waited, longest_gap, batches = asyncio.run(run())
    assert result.created and result.checkin["logbook_id"] == book["id"]
    assert HOLD - 0.2 < waited < HOLD + 3.0  # written once the lock was let go, not before
    # The loop went on meanwhile: a blocked loop would show one gap of about HOLD. (Not much
    # tighter: this VM's host sometimes stalls a process for a couple of hundred ms.)
    assert longest_gap < HOLD / 2
    assert batches == 2


# Redis holds back writes (PUBLISH among them) this long: less than the writer's patience
# with a PUBLISH reply (PUBLISH_REPLY_SECONDS), so the replies do come.
PAUSE_MS = 800


def test_a_late_publish_reply_holds_up_no_batch_and_keeps_the_order(engine, people,
                                                                     venue_with_logbook):
    _owner, venue, book = venue_with_logbook
    visitors = [people.make(name)["id"] for name in ("吴十", "郑一", "王二")]
    redis_client = sync_client(os.environ["REDIS_URL"])
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHECKINS)

    async def run(lock_free):
        writer = CheckinWriter(engine, os.environ["REDIS_URL"])
        await writer.start()
        try:
            await writer.submit(CheckinRequest(citizen_id=visitors[0], code=book["token"]))
            redis_client.execute_command("CLIENT", "PAUSE", PAUSE_MS, "WRITE")
            paused = time.monotonic()
            # The first PUBLISH now waits in Redis; the next batch must not wait behind it.
            first = await writer.submit(CheckinRequest(citizen_id=visitors[1],
                                                       code=book["token"]))
            second = await writer.submit(CheckinRequest(citizen_id=visitors[2],
                                                        code=book["token"]))
            answered = time.monotonic() - paused
            # Meanwhile no other writer may publish: the lock stays held until Redis replies.
            locked_meanwhile = not lock_free()
            freed = False
            deadline = time.monotonic() + 10
            while not freed and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                if lock_free():
                    freed = time.monotonic() - paused
            return first, second, answered, locked_meanwhile, freed
        finally:
            with contextlib.suppress(Exception):
                redis_client.execute_command("CLIENT", "UNPAUSE")
            await writer.stop()

    try:
        with _another_writer(engine, venue["id"]) as lock_free:
            first, second, answered, locked_meanwhile, freed = asyncio.run(run(lock_free))
        batches = []
        deadline = time.monotonic() + 10
        while len(batches) < 3 and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
            if message is not None:
                batches.append(decode(message["data"]))
    finally:
        pubsub.close()
        redis_client.close()
    assert PAUSE_MS / 1000 < PUBLISH_REPLY_SECONDS
    assert first.created and second.created
    # Both answered long before Redis took the first PUBLISH (waiting for its reply, the
    # second batch would have been written only after the pause, or a 1 s timeout).
    assert answered < PAUSE_MS / 1000 * 0.5, answered
    assert locked_meanwhile
    assert freed and freed > PAUSE_MS / 1000 * 0.8, freed  # let go once the replies came
    # Every batch reached Redis, in id order, each following on from the one before.
    assert [b["events"][0]["id"] for b in batches[1:]] == [first.checkin["id"],
                                                          second.checkin["id"]]
    # [venue, prev, last]: each batch follows on from the one before at the venue.
    assert [b["venues"][0][1] for b in batches[1:]] == [b["venues"][0][2]
                                                        for b in batches[:-1]]
    assert {b["venues"][0][0] for b in batches} == {venue["id"]}


def test_a_publish_redis_never_answers_is_given_up_and_the_lock_let_go(
        engine, people, venue_with_logbook, monkeypatch, caplog):
    _owner, venue, book = venue_with_logbook
    monkeypatch.setattr(process, "PUBLISH_REPLY_SECONDS", 0.3)
    client = KeptConnection(sync_client(os.environ["REDIS_URL"], socket_timeout=5))
    writer = ingest_writer.BatchWriter(engine, client)
    ours, theirs = socket.socketpair()  # the web process's end stays open, and quiet
    admin = sync_client(os.environ["REDIS_URL"])
    waiting: dict = {}
    waiter = threading.Thread(
        target=lambda: waiting.setdefault("message", process._next_message(writer, ours)))
    stack = contextlib.ExitStack()
    try:
        lock_free = stack.enter_context(_another_writer(engine, venue["id"]))
        admin.execute_command("CLIENT", "PAUSE", 3000, "WRITE")
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="scanbook.ingest"):
            result = writer.write([CheckinRequest(citizen_id=people.make("冯二")["id"],
                                                  code=book["token"])])[0]
            assert writer.holding and writer.publisher.unread == 1  # its reply not in yet
            waiter.start()
            freed = None
            while freed is None and time.monotonic() - started < 2.0:
                if lock_free():
                    freed = time.monotonic() - started
                time.sleep(0.02)
        still_waiting = waiter.is_alive()  # for the next batch, the lock let go
        theirs.close()
        waiter.join(10)
    finally:
        with contextlib.suppress(Exception):
            admin.execute_command("CLIENT", "UNPAUSE")
        writer.close()
        stack.close()
        client.close()
        admin.close()
        ours.close()
    assert result.created
    # Given up after PUBLISH_REPLY_SECONDS (0.3 s here), not when Redis came back (3 s), nor
    # after the connection's own 5-s timeout.
    assert freed is not None and freed < 2.0, freed
    assert still_waiting and waiting["message"] is None
    assert writer.publisher.unread == 0
    assert [r for r in caplog.records if "check-in publish failed" in r.message]


def test_postgres_writer_keeps_its_connection_and_survives_losing_it(
        engine, people, venue_with_logbook, monkeypatch):
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's writer keeps a pooled connection (SQLite's is its file)")
    from sqlalchemy import text

    _owner, _venue, book = venue_with_logbook
    monkeypatch.setattr(ingest_writer, "KEEP_IDLE_SECONDS", 0.3)
    client = KeptConnection(sync_client(os.environ["REDIS_URL"]))
    writer = ingest_writer.BatchWriter(engine, client)
    visitors = [people.make(name)["id"] for name in ("褚一", "卫二", "蒋三", "沈四")]

    def scan(i: int):
        result = writer.write([CheckinRequest(citizen_id=visitors[i], code=book["token"])])[0]
        writer.settle()  # as the writer process does while it waits for the next batch
        return result

    def backend() -> int:
        return writer._conn.connection.dbapi_connection.info.backend_pid

    def terminate(pid: int) -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            conn.commit()

    try:
        assert scan(0).created
        first = backend()
        assert scan(1).created
        kept = backend() == first  # no check-out (and no ping) a batch while busy
        # Its server process killed between two batches: that batch fails as a database
        # outage does (503), and the next one takes another connection.
        terminate(first)
        time.sleep(0.05)
        with pytest.raises(Exception) as failed:
            scan(2)
        assert scan(2).created
        second = backend()
        # Killed while the writer is idle past KEEP_IDLE_SECONDS: the next batch takes a
        # connection the pool has pinged, and nothing fails.
        terminate(second)
        time.sleep(0.4)
        after_idle = scan(3)
        third = backend()
    finally:
        writer.close()
        client.close()
    assert kept
    assert is_unavailable(failed.value), repr(failed.value)
    assert second != first
    assert after_idle.created and third != second


def test_a_dead_writer_costs_its_batch_a_retry_and_nothing_else(engine, client, people,
                                                                venue_with_logbook):
    _owner, _venue, book = venue_with_logbook
    first, second = people.make("孙八"), people.make("周九")

    async def run():
        writer = CheckinWriter(engine, os.environ["REDIS_URL"])
        await writer.start()
        try:
            one = await writer.submit(CheckinRequest(citizen_id=first["id"],
                                                     code=book["token"]))
            pid = writer.pid
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the kill has landed
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                await asyncio.sleep(0.01)
            outcomes = []
            for _ in range(2):  # the batch that finds it dead, then one on a new writer
                try:
                    outcomes.append(await writer.submit(
                        CheckinRequest(citizen_id=second["id"], code=book["token"])))
                except WriterUnavailable as exc:
                    outcomes.append(exc)
            again = await writer.submit(CheckinRequest(citizen_id=first["id"],
                                                       code=book["token"]))
            return one, outcomes, again, pid, writer.pid, writer.restarts
        finally:
            await writer.stop()

    one, outcomes, again, old_pid, new_pid, restarts = asyncio.run(run())
    assert one.created
    assert new_pid != old_pid and restarts == 1
    written = [o for o in outcomes if not isinstance(o, Exception)]
    # A kill the writer noticed before the batch gets 503 at most once; the retry is written.
    assert len(written) >= 1 and written[0].checkin["name"].startswith("周")
    assert sum(1 for o in written if o.created) == 1  # the retry was not written twice
    assert not again.created and again.checkin["id"] == one.checkin["id"]  # the 60 s rule
    r = client.get(f"/api/logbooks/{book['id']}/checkins", headers=_owner["headers"])
    assert r.status_code == 200, r.text
    assert sorted(c["id"] for c in r.json()["items"]) == sorted(
        {one.checkin["id"], written[0].checkin["id"]})


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policy")
def test_the_writer_does_not_preempt_the_loop_that_feeds_it(engine, people, venue_with_logbook):
    _owner, _venue, book = venue_with_logbook
    visitor = people.make("郑一")

    async def run():
        writer = CheckinWriter(engine, os.environ["REDIS_URL"])
        await writer.start()
        try:
            result = await writer.submit(CheckinRequest(citizen_id=visitor["id"],
                                                        code=book["token"]))
            return result, os.sched_getscheduler(writer.pid)
        finally:
            await writer.stop()

    result, policy = asyncio.run(run())
    assert result.created
    assert policy == os.SCHED_BATCH
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the web process keeps its own


def test_metrics_count_the_writers_batches_and_restarts(client, people, venue_with_logbook):
    _owner, _venue, book = venue_with_logbook
    visitor = people.make("吴十")
    r = client.post("/api/scan", headers=visitor["headers"], json={"code": book["token"]})
    assert r.status_code == 201, r.text
    metrics = dict(line.split(" ", 1) for line in client.get("/metrics").text.splitlines()
                   if line.startswith("scanbook_check"))
    assert float(metrics["scanbook_checkins_written"]) == 1
    assert float(metrics["scanbook_checkin_batches"]) == 1
    assert float(metrics["scanbook_checkin_writer_restarts"]) == 0


def test_a_slow_batch_is_logged_with_where_its_time_went(engine, redis_client, people,
                                                         venue_with_logbook, monkeypatch,
                                                         caplog):
    _owner, _venue, book = venue_with_logbook
    writer = ingest_writer.BatchWriter(engine, redis_client)
    try:
        monkeypatch.setattr(ingest_writer, "SLOW_BATCH_SECONDS", 10.0)
        writer.write([CheckinRequest(citizen_id=people.make("周八")["id"], code=book["token"])])
        assert not [r for r in caplog.records if "slow check-in batch" in r.message]
        monkeypatch.setattr(ingest_writer, "SLOW_BATCH_SECONDS", 0.0)  # every batch is slow now
        with caplog.at_level(logging.WARNING, logger="scanbook.ingest"):
            results = writer.write([CheckinRequest(citizen_id=people.make("郑九")["id"],
                                                   code=book["token"])])
    finally:
        writer.close()
    assert results[0].created
    slow = [r.message for r in caplog.records if "slow check-in batch of 1" in r.message]
    assert len(slow) == 1 and "record " in slow[0] and "commit " in slow[0]
    assert "on a core" in slow[0]
