"""Daily partitions of `checkin` (PostgreSQL): made ahead of time, dropped whole when expired.

Migration 0003 turns `checkin` into a table partitioned by RANGE (at): one partition per
Beijing calendar day, `checkin_pYYYYMMDD`, covering [00:00+08:00, next 00:00+08:00), plus
`checkin_default`, which catches any row whose day has no partition yet so that an insert
never fails. Days follow Beijing time so that partitions are made and dropped around
midnight in Beijing, the quietest hour of scanning.

- `ensure_partitions(bind)` makes today's partition and the next `days_ahead` days'; rows
  that landed in the default partition meanwhile move into their day's new partition.
- `drop_expired_partitions(bind, cutoff)` drops every day that ended at or before `cutoff`:
  a whole day of check-ins leaves with one DROP TABLE, without DELETE, dead tuples or vacuum.
- `purge_default_partition(bind, cutoff)` deletes the default partition's expired rows
  (normally none).

Each takes an Engine (every partition in its own short transaction: the right choice for jobs)
or a Connection (the caller's transaction: migrations). Creating or dropping a partition
takes an ACCESS EXCLUSIVE lock on `checkin` for a few milliseconds; `lock_timeout` bounds the
wait, so a long query in the way makes the step give up (and the next run try again) instead
of queueing every scan behind it. On SQLite, or before the migration, all three do nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from models.db import describe_error
from models.tables import utcnow
from models.timeutil import BEIJING

log = logging.getLogger("scanbook.partitions")

PARENT = "checkin"
DEFAULT_PARTITION = "checkin_default"
# A week of partitions ahead: inserts keep landing in their own day even if the scheduled job
# is down for days. Empty partitions cost the planner next to nothing.
DAYS_AHEAD = 7
# How long a partition step may wait for its lock on `checkin` before giving up for this run
# (every scan waits behind a queued ACCESS EXCLUSIVE request meanwhile).
LOCK_TIMEOUT = "2s"
_NAME = re.compile(r"^checkin_p(\d{8})$")


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The [start, end) of a Beijing calendar day, as aware datetimes."""
    start = datetime.combine(day, time(), BEIJING)
    return start, start + timedelta(days=1)


def beijing_day(moment: datetime) -> date:
    return moment.astimezone(BEIJING).date()


def is_partitioned(bind: Engine | Connection) -> bool:
    """True on PostgreSQL once migration 0003 has made `checkin` a partitioned table."""
    if bind.dialect.name != "postgresql":
        return False
    with _step(bind, None) as conn:
        kind = conn.execute(text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"),
                            {"t": PARENT}).scalar()
    return kind == "p"


def partitions(bind: Engine | Connection) -> dict[date, str]:
    """The day partitions that exist, by day (the default partition is not listed)."""
    with _step(bind, None) as conn:
        names = conn.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:t)"), {"t": PARENT}).scalars()
        found = {}
        for name in names:
            match = _NAME.match(name)
            if match:
                found[datetime.strptime(match.group(1), "%Y%m%d").date()] = name
    return found


def ensure_partitions(bind: Engine | Connection, *, days_ahead: int = DAYS_AHEAD,
                      today: date | None = None, since: date | None = None,
                      lock_timeout: str | None = LOCK_TIMEOUT) -> list[str]:
    """Make the partitions from `since` (default: today) through today + `days_ahead`
    (Beijing days) that do not exist yet; returns the names made. Idempotent."""
    if not is_partitioned(bind):
        return []
    today = today or beijing_day(utcnow())
    first = min(since or today, today)
    existing = partitions(bind)
    made = []
    for offset in range((today - first).days + days_ahead + 1):
        day = first + timedelta(days=offset)
        if day in existing:
            continue
        try:
            with _step(bind, lock_timeout) as conn:
                _create(conn, day)
        except OperationalError as exc:  # lock_timeout: the next run tries again
            log.warning("partition %s not made this time: %s", partition_name(day),
                        describe_error(exc))
            continue
        made.append(partition_name(day))
    if made:
        log.info("made check-in partitions %s", ", ".join(made))
    return made


def drop_expired_partitions(bind: Engine | Connection, cutoff: datetime, *,
                            lock_timeout: str | None = LOCK_TIMEOUT) -> list[str]:
    """Drop every day partition whose day ended at or before `cutoff` (check-ins older than
    the retention limit); returns the names dropped. Idempotent."""
    if not is_partitioned(bind):
        return []
    dropped = []
    for day, name in sorted(partitions(bind).items()):
        if day_bounds(day)[1] > cutoff:
            continue
        try:
            with _step(bind, lock_timeout) as conn:
                conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
        except OperationalError as exc:
            log.warning("partition %s not dropped this time: %s", name, describe_error(exc))
            continue
        dropped.append(name)
    if dropped:
        log.info("dropped expired check-in partitions %s", ", ".join(dropped))
    return dropped


def purge_default_partition(bind: Engine | Connection, cutoff: datetime) -> int:
    """Delete the default partition's check-ins older than `cutoff`; returns how many.
    (Rows only land there when their day had no partition: normally it is empty.)"""
    if not is_partitioned(bind):
        return 0
    with _step(bind, None) as conn:
        return conn.execute(text(f"DELETE FROM {DEFAULT_PARTITION} WHERE at < :cutoff"),
                            {"cutoff": cutoff}).rowcount


def _create(conn: Connection, day: date) -> None:
    name = partition_name(day)
    start, end = day_bounds(day)
    bounds = {"start": start, "end": end}
    # Bounds are literals in DDL (no parameters there); ISO strings made from a date.
    create = (f"CREATE TABLE {name} PARTITION OF {PARENT} "
              f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')")
    stranded = conn.execute(text(
        f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} WHERE at >= :start AND at < :end)"),
        bounds).scalar()
    if not stranded:
        conn.execute(text(create))
        return
    # The day's rows went to the default partition (no partition existed then). A partition
    # cannot be made over rows the default holds, so: detach the default, make the day, move
    # its rows over, attach the default again; one transaction, so no scan sees a gap.
    conn.execute(text(f"ALTER TABLE {PARENT} DETACH PARTITION {DEFAULT_PARTITION}"))
    conn.execute(text(create))
    moved = conn.execute(text(
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE at >= :start AND at < :end "
        f"RETURNING *) INSERT INTO {name} SELECT * FROM moved"), bounds).rowcount
    conn.execute(text(f"ALTER TABLE {PARENT} ATTACH PARTITION {DEFAULT_PARTITION} DEFAULT"))
    log.info("moved %d check-ins from %s into %s", moved, DEFAULT_PARTITION, name)


@contextmanager
def _step(bind: Engine | Connection, lock_timeout: str | None) -> Iterator[Connection]:
    """One step's connection: its own transaction from an Engine; a savepoint inside the
    caller's transaction from a Connection (a failed step then leaves the rest intact)."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            _set_lock_timeout(conn, lock_timeout)
            yield conn
        return
    if lock_timeout is None:
        yield bind
        return
    previous = bind.execute(text("SELECT current_setting('lock_timeout')")).scalar()
    with bind.begin_nested():
        _set_lock_timeout(bind, lock_timeout)
        yield bind
        # SET LOCAL outlives a released savepoint: give the caller's transaction its own
        # setting back (on failure, the rollback to the savepoint undoes it anyway).
        _set_lock_timeout(bind, previous)


def _set_lock_timeout(conn: Connection, value: str | None) -> None:
    if value is not None:
        conn.execute(text("SELECT set_config('lock_timeout', :v, true)"), {"v": value})


__all__ = ["DAYS_AHEAD", "DEFAULT_PARTITION", "day_bounds", "drop_expired_partitions",
           "ensure_partitions", "is_partitioned", "partition_name", "partitions",
           "purge_default_partition"]
