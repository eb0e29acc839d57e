"""Daily partitions of `checkin` on PostgreSQL (migration 0003, models/partitions.py)."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from models.partitions import (
    DEFAULT_PARTITION,
    beijing_day,
    day_bounds,
    drop_expired_partitions,
    ensure_partitions,
    is_partitioned,
    partition_name,
    partitions,
    purge_default_partition,
)
from models.tables import utcnow
from models.timeutil import BEIJING


@pytest.fixture(autouse=True)
def _postgresql_only(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("check-ins are partitioned on PostgreSQL only (SQLite keeps one table); "
                    "set DATABASE_URL=postgresql://... to run these")


@pytest.fixture
def checkin(client, venue_with_logbook, people):
    """One real check-in through the API: a template row for inserting others at any time."""
    owner, venue, book = venue_with_logbook
    guest = people.make("赵六")
    r = client.post("/api/scan", headers=guest["headers"], json={"code": book["token"]})
    assert r.status_code == 201, r.text
    return r.json()["checkin_id"]


def _insert_at(engine, at: datetime) -> int:
    with engine.begin() as conn:
        return conn.execute(text(
            "INSERT INTO checkin (venue_id, logbook_id, citizen_id, via, status, alert, minor, "
            "name_masked, id_masked, at) SELECT venue_id, logbook_id, citizen_id, via, status, "
            "alert, minor, name_masked, id_masked, :at FROM checkin ORDER BY id LIMIT 1 "
            "RETURNING id"), {"at": at}).scalar_one()


def _home(engine, checkin_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT tableoid::regclass::text FROM checkin WHERE id = :i"),
                            {"i": checkin_id}).scalar_one()


def _cleanup(engine, keep_from) -> None:
    """Drop the day partitions a test made outside the migration's window."""
    today = beijing_day(utcnow())
    with engine.begin() as conn:
        for day, name in partitions(conn).items():
            if day < today or day > today + timedelta(days=keep_from):
                conn.execute(text(f"DROP TABLE {name}"))


def test_migration_partitions_checkin_by_day(engine):
    today = beijing_day(utcnow())
    assert is_partitioned(engine)
    with engine.connect() as conn:
        key = conn.execute(text(
            "SELECT array_agg(a.attname ORDER BY a.attname) FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = 'checkin'::regclass AND i.indisprimary")).scalar_one()
        assert key == ["at", "id"]
        # Every index of the parent exists on every partition (and the default one).
        index_count = conn.execute(text(
            "SELECT c.relname, count(x.indexrelid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid LEFT JOIN pg_index x ON x.indrelid = c.oid "
            "WHERE i.inhparent = 'checkin'::regclass GROUP BY c.relname")).all()
    names = dict(index_count)
    # primary key + the five indexes + 0006's partial index on visitor_id + open stays' (0011,
    # by venue) and open stays by citizen (0015)
    assert names.pop(DEFAULT_PARTITION) == 9
    assert set(names.values()) == {9}
    days = partitions(engine)
    # The migration made the day it ran and the 7 after it. A run that crosses midnight in
    # Beijing between the migration and this line finds today one past that day (the hourly
    # job, which makes the new day, does not run here): CI failed once that way at 00:00.
    made = min(day for day in days if day >= today - timedelta(days=1))
    assert made in (today, today - timedelta(days=1))
    assert {made + timedelta(days=n) for n in range(8)} <= set(days)


def test_scans_land_in_their_days_partition_and_ids_restart(engine, checkin):
    assert checkin == 1  # TRUNCATE ... RESTART IDENTITY still owns the id sequence
    assert _home(engine, checkin) == partition_name(beijing_day(utcnow()))


def test_days_are_beijing_days(engine):
    start, end = day_bounds(datetime(2026, 11, 29).date())
    assert start.isoformat() == "2026-11-29T00:00:00+08:00"
    assert end - start == timedelta(days=1)
    # 23:30 UTC is 07:30 the next morning in Beijing.
    assert str(beijing_day(datetime.fromisoformat("2026-11-29T23:30:00+00:00"))) == "2026-11-30"


def test_out_of_range_rows_wait_in_the_default_partition_then_move(engine, checkin):
    far = beijing_day(utcnow()) + timedelta(days=40)
    at = day_bounds(far)[0] + timedelta(hours=12)
    try:
        row = _insert_at(engine, at)  # no partition for that day yet: the insert still works
        assert _home(engine, row) == DEFAULT_PARTITION
        made = ensure_partitions(engine, today=far, days_ahead=0)
        assert made == [partition_name(far)]
        assert _home(engine, row) == partition_name(far)
        with engine.connect() as conn:
            assert conn.execute(text(f"SELECT count(*) FROM {DEFAULT_PARTITION}")).scalar() == 0
        assert ensure_partitions(engine, today=far, days_ahead=0) == []  # idempotent
    finally:
        _cleanup(engine, 7)


def test_drop_expired_partitions_drops_whole_days_only(engine, checkin):
    now = utcnow()
    today = beijing_day(now)
    try:
        ensure_partitions(engine, since=today - timedelta(days=31))
        old = _insert_at(engine, day_bounds(today - timedelta(days=30))[0] + timedelta(hours=9))
        cutoff = now - timedelta(days=28)
        # Expired, but its day has not ended yet at the cutoff: it stays (for the row purge).
        edge = _insert_at(engine, max(cutoff - timedelta(minutes=5),
                                      day_bounds(beijing_day(cutoff))[0]))
        young = _insert_at(engine, now - timedelta(days=27))

        dropped = drop_expired_partitions(engine, cutoff)

        assert partition_name(today - timedelta(days=30)) in dropped
        for name in dropped:
            day = datetime.strptime(name[-8:], "%Y%m%d").date()
            assert day_bounds(day)[1] <= cutoff
        left = partitions(engine)
        assert all(day_bounds(day)[1] > cutoff for day in left)
        assert beijing_day(cutoff) in left  # the day the cutoff falls in stays whole
        with engine.connect() as conn:
            ids = set(conn.execute(text("SELECT id FROM checkin")).scalars())
        assert old not in ids and {edge, young, checkin} <= ids
        assert drop_expired_partitions(engine, cutoff) == []  # idempotent
    finally:
        _cleanup(engine, 7)


def test_purge_default_partition_deletes_only_expired_rows(engine, checkin):
    now = utcnow()
    far_past = now - timedelta(days=400)  # no partition that old: the default takes it
    far_future = now + timedelta(days=400)
    old, new = _insert_at(engine, far_past), _insert_at(engine, far_future)
    assert _home(engine, old) == _home(engine, new) == DEFAULT_PARTITION
    assert purge_default_partition(engine, now - timedelta(days=28)) == 1
    with engine.connect() as conn:
        ids = set(conn.execute(text("SELECT id FROM checkin")).scalars())
    assert ids == {checkin, new}


def test_a_busy_table_makes_the_step_give_up_not_queue(engine, checkin):
    """A long transaction reading `checkin` holds a lock DDL must wait for; the step gives up
    after lock_timeout (scans would queue behind it meanwhile) and a later run succeeds."""
    day = beijing_day(utcnow()) + timedelta(days=50)
    holding = threading.Event()
    release = threading.Event()

    def reader() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT count(*) FROM checkin"))  # ACCESS SHARE until commit
            holding.set()
            release.wait(10)
            conn.rollback()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert holding.wait(10)
        t0 = time.monotonic()
        assert ensure_partitions(engine, today=day, days_ahead=0, lock_timeout="200ms") == []
        assert time.monotonic() - t0 < 5
        # Inside a caller's transaction: the failed step rolls back to its savepoint only.
        with engine.begin() as conn:
            assert ensure_partitions(conn, today=day, days_ahead=0, lock_timeout="200ms") == []
            assert conn.execute(text("SELECT current_setting('lock_timeout')")).scalar() == "0"
            assert conn.execute(text("SELECT count(*) FROM checkin")).scalar() == 1
    finally:
        release.set()
        thread.join()
    try:
        assert ensure_partitions(engine, today=day, days_ahead=0) == [partition_name(day)]
    finally:
        _cleanup(engine, 7)


def test_migration_round_trip_keeps_rows_and_ids(engine, checkin):
    from alembic import command

    from models.migrate import alembic_config

    later = _insert_at(engine, utcnow() - timedelta(days=3))
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    try:
        assert not is_partitioned(engine)
        with engine.connect() as conn:
            assert set(conn.execute(text("SELECT id FROM checkin")).scalars()) == {checkin, later}
    finally:
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    assert is_partitioned(engine)
    three_days_ago = beijing_day(utcnow() - timedelta(days=3))
    assert _home(engine, later) == partition_name(three_days_ago)  # backfilled its day
    assert _home(engine, checkin) == partition_name(beijing_day(utcnow()))
    assert _insert_at(engine, datetime.now(BEIJING)) > later  # the sequence carried on
    _cleanup(engine, 7)
