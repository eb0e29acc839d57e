"""Jobs that change statuses. Each takes a batch id, reloads its rows, works in chunks."""

from __future__ import annotations

from rq import get_current_job
from sqlmodel import Session

from models.health import ChangeOutcome, apply_changes
from models.tables import Batch, utcnow
from realtime.events import citizen_channel, publish, venue_channel
from workers.context import resources

CHUNK = 2000  # rows per transaction: big enough to amortise, small enough to hold locks briefly


def publish_outcome(client, outcome: ChangeOutcome) -> None:
    """Doorbells after the commit: each citizen's notice, each venue's logbook event."""
    items = [(citizen_channel(n["citizen_id"]), n) for n in outcome.notices]
    items += [(venue_channel(e["venue_id"]), e) for e in outcome.logbook_events]
    publish(client, items)
    outcome.notices.clear()
    outcome.logbook_events.clear()


def _progress(done: int, total: int) -> None:
    job = get_current_job()
    if job is not None:
        job.meta["progress"] = {"done": done, "total": total}
        job.save_meta()


def finish_batch(engine, batch_id: int, result: dict) -> dict:
    with Session(engine) as session:
        batch = session.get(Batch, batch_id)
        batch.result = result
        batch.finished_at = utcnow()
        session.add(batch)
        session.commit()
    return result


def apply_status_changes(batch_id: int) -> dict:
    """Apply an official's status-change batch (idempotent: safe to re-run after a crash)."""
    _settings, engine, client, lock = resources()
    with Session(engine) as session:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise LookupError(f"batch {batch_id} not found")
        rows = list(enumerate(batch.payload.get("changes", [])))
    outcome = ChangeOutcome()
    for start in range(0, len(rows), CHUNK):
        with engine.connect() as conn, lock.hold(conn):
            with Session(bind=conn, expire_on_commit=False) as session:
                apply_changes(session, batch_id=batch_id, rows=rows[start:start + CHUNK],
                              outcome=outcome)
                session.commit()
            publish_outcome(client, outcome)
        _progress(min(start + CHUNK, len(rows)), len(rows))
    return finish_batch(engine, batch_id, {"total": len(rows), **outcome.summary()})
