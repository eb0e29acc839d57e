"""Jobs that change statuses and logbook states. Each takes a batch id, reloads its request
from the database and works through it in chunks, one transaction each, so that RQ's fork per
job is paid once per request, not once per citizen.

Idempotent: a re-run (RQ retry, or a re-queue after a worker was killed mid-way) skips the
citizens the batch already changed and only re-publishes notices already committed (clients
drop ids they have seen), so nothing changes twice and no notice is shown twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TypeVar

import redis
from rq import get_current_job
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from models.health import (
    ChangeOutcome,
    applied_count,
    apply_changes,
    batch_notices,
    exposed_citizens,
    exposure_changes,
    parse_rows,
    resolve_rows,
)
from models.tables import Batch, Violation, utcnow
from models.undo import batch_changes, undo_changes
from models.violations import reactivate_logbooks, suspend_logbooks
from models.visitors import exposed_visitors
from realtime.events import access_message, citizen_channel, publish, venue_channel
from workers.context import resources
from workers.push import queue_status_pushes

# Rows per transaction: big enough to amortise round trips, small enough that the notice lock
# and SQLite's write lock are held for well under a second (scans keep flowing meanwhile).
CHUNK = int(os.environ.get("SCANBOOK_STATUS_CHUNK", "2000"))
T = TypeVar("T")
_b = Batch.__table__
_v = Violation.__table__


class PermanentJobError(LookupError):
    """The job can never succeed (its batch is gone): fail at once, without retries."""


def chunks(items: list[T], size: int | None = None) -> Iterator[list[T]]:
    size = size or CHUNK
    for start in range(0, len(items), size):
        yield items[start:start + size]


def listening(client, channels: list[str]) -> set[str]:
    """The channels someone is subscribed to right now (one PUBSUB NUMSUB for a chunk)."""
    if not channels:
        return set()
    try:
        counts = client.pubsub_numsub(*channels)
    except (redis.RedisError, OSError):
        return set(channels)  # can't tell: ring every doorbell
    return {ch.decode() if isinstance(ch, bytes) else ch for ch, n in counts if n}


def publish_outcome(client, outcome: ChangeOutcome) -> None:
    """Doorbells after the commit: each citizen's notice, each venue's logbook event.

    Only citizens with a connected /ws/me hear a doorbell: asked after the commit, so anyone
    who subscribes later reads the notice from the database when their feed starts (feeds
    subscribe before they replay). For 100,000 exposed citizens of whom a few thousand are
    online, that saves ~97 % of the PUBLISH round trips.

    Everyone who is no longer green has lost any registrar duty: the live feeds they hold
    recheck their access and close (realtime.events.access_changed).

    Citizens whose page is closed hear of it by Web Push, or by SMS (workers/push.py): one job
    for the chunk's notices, queued here so that every writer of status notices queues it.
    """
    by_channel = [(citizen_channel(n["citizen_id"]), n) for n in outcome.notices]
    online = listening(client, [ch for ch, _ in by_channel])
    items = [(ch, n) for ch, n in by_channel if ch in online]
    items += [(venue_channel(e["venue_id"]), e) for e in outcome.logbook_events]
    not_green = [n["citizen_id"] for n in outcome.notices if n.get("status") != "green"]
    if not_green:
        items.append(access_message(citizens=not_green))
    publish(client, items)
    queue_status_pushes(client, [n["id"] for n in outcome.notices])
    outcome.notices.clear()
    outcome.logbook_events.clear()


def _progress(done: int, total: int) -> None:
    job = get_current_job()
    if job is not None:
        job.meta["progress"] = {"done": done, "total": total}
        job.save_meta()


def _load(engine: Engine, batch_id: int, kind: str) -> dict:
    with engine.connect() as conn:
        row = conn.execute(_b.select().where(_b.c.id == batch_id, _b.c.kind == kind)).first()
    if row is None:
        job = get_current_job()
        if job is not None:
            job.retries_left = 0  # retrying cannot bring the batch back
        raise PermanentJobError(f"{kind} batch {batch_id} not found")
    return dict(row.payload)


def finish_batch(engine: Engine, batch_id: int, result: dict) -> dict:
    with engine.begin() as conn:
        conn.execute(update(_b).where(_b.c.id == batch_id).values(result=result,
                                                                 finished_at=utcnow()))
    return result


def _republish(engine: Engine, client, lock, batch_id: int) -> int:
    """On a re-run: publish again what an interrupted run committed (its publish may have
    died with it). Under the notice lock, so the feed's order holds."""
    with engine.connect() as conn:
        if not applied_count(conn, batch_id):  # a first run (the usual case): nothing to do
            return 0
    with engine.connect() as conn, lock.hold(conn):
        outcome = ChangeOutcome(notices=batch_notices(conn, batch_id))
        conn.rollback()
        count = len(outcome.notices)
        publish_outcome(client, outcome)
    return count


def _run(batch_id: int, pieces: Iterable[list], total: int, outcome: ChangeOutcome,
         to_changes, *, raise_only: bool = False) -> dict:
    """Apply the batch chunk by chunk: insert → commit → publish under the notice lock."""
    _settings, engine, client, lock = resources()
    republished = _republish(engine, client, lock, batch_id)
    done = 0
    for piece in pieces:
        with engine.connect() as conn, lock.hold(conn):
            apply_changes(conn, batch_id=batch_id, changes=to_changes(conn, piece),
                          outcome=outcome, now=utcnow(), raise_only=raise_only)
            conn.commit()
            publish_outcome(client, outcome)
        done += len(piece)
        _progress(done, total)
    with engine.connect() as conn:
        applied = applied_count(conn, batch_id)
    outcome.errors.sort(key=lambda e: (e["row"] is None, e["row"] or 0))
    return {"total": total, **outcome.summary(), "applied": applied,
            "applied_this_run": outcome.applied, "republished": republished}


def apply_status_changes(batch_id: int) -> dict:
    """Apply an official's status-change batch (up to 100,000 rows). Every row is validated;
    invalid rows and unknown ID numbers are reported per row in the result."""
    _settings, engine, _client, _lock = resources()
    rows = _load(engine, batch_id, "status_changes").get("changes", [])
    parsed, errors = parse_rows(rows)
    outcome = ChangeOutcome(errors=errors)
    result = _run(batch_id, chunks(parsed), len(rows), outcome,
                  lambda conn, piece: resolve_rows(conn, piece, outcome))
    return finish_batch(engine, batch_id, result)


def apply_exposure(batch_id: int) -> dict:
    """Everyone checked in at the venue inside the window gets the status, unless they
    already have an equal or stricter one (they keep it: an exposure only ever raises)."""
    _settings, engine, _client, _lock = resources()
    payload = _load(engine, batch_id, "exposure")
    with engine.connect() as conn:
        exposed = exposed_citizens(conn, payload)
        unregistered = exposed_visitors(
            conn, venue_id=payload["venue_id"], start=datetime.fromisoformat(payload["from"]),
            until=datetime.fromisoformat(payload["until"]))
    outcome = ChangeOutcome()
    result = _run(batch_id, chunks(exposed), len(exposed), outcome,
                  lambda _conn, piece: exposure_changes(payload, piece), raise_only=True)
    # Unregistered visitors (proxy check-ins) cannot be given a status: counted for officials.
    return finish_batch(engine, batch_id, {"venue_id": payload["venue_id"], **result,
                                           "unregistered": unregistered})


def undo_batch(batch_id: int) -> dict:
    """Revert what an earlier batch changed, for the people nobody has changed since (the
    others are listed as kept, `changed_since`); notices like any change. Idempotent: a
    re-run skips the people this undo already reverted."""
    _settings, engine, _client, _lock = resources()
    undone = _load(engine, batch_id, "undo")["batch_id"]
    with engine.connect() as conn:
        done = batch_changes(conn, undone)
    outcome = ChangeOutcome()
    result = _run(batch_id, chunks(done), len(done), outcome,
                  lambda conn, piece: undo_changes(conn, undo_batch_id=batch_id,
                                                   undone_batch_id=undone, rows=piece,
                                                   outcome=outcome))
    return finish_batch(engine, batch_id, {"undone_batch_id": undone, **result})


def _logbook_job(batch_id: int, kind: str, action) -> dict:
    _settings, engine, client, _lock = resources()
    violation_id = _load(engine, batch_id, kind)["violation_id"]
    with engine.connect() as conn:
        events = action(conn, violation_id=violation_id, now=utcnow())
        registrar = conn.execute(select(_v.c.citizen_id).where(_v.c.id == violation_id)
                                 ).scalar()
        conn.commit()
    items = [(venue_channel(e["venue_id"]), e) for e in events]
    if kind == "violation" and registrar is not None:
        items.append(access_message(citizens=[registrar]))  # suspended: off duty everywhere
    publish(client, items)
    return finish_batch(engine, batch_id, {"violation_id": violation_id, "logbooks": len(events),
                                           "logbook_ids": [e["logbook_id"] for e in events]})


def apply_violation(batch_id: int) -> dict:
    """Suspend every active logbook the registrar owns (410 logbook_suspended)."""
    return _logbook_job(batch_id, "violation", suspend_logbooks)


def lift_violation(batch_id: int) -> dict:
    """After an official lifts a violation: the suspended logbooks are active again."""
    return _logbook_job(batch_id, "lift", reactivate_logbooks)
