"""The retention job: check-ins older than SCANBOOK_RETENTION_DAYS (default 28) are deleted,
and with them the unregistered visitors who have no visit left (models/visitors.py).

On PostgreSQL with daily check-in partitions (migration 0003) whole expired days are dropped
(models/partitions.py) and the coming days' partitions are made ahead; whatever is left past
the limit (the part of the boundary day, the default partition) is deleted row by row."""

from __future__ import annotations

from datetime import timedelta

from models.partitions import drop_expired_partitions, ensure_partitions
from models.retention import purge_checkins as _purge
from models.tables import utcnow
from models.timeutil import iso
from models.visitors import purge_visitors
from workers.context import resources


def purge_checkins() -> dict:
    """Run hourly by the cron scheduler (workers.schedule); idempotent."""
    settings, engine, _client, _lock = resources()
    cutoff = utcnow() - timedelta(days=settings.retention_days)
    made = ensure_partitions(engine)
    dropped = drop_expired_partitions(engine, cutoff)
    deleted = _purge(engine, before=cutoff)
    visitors = purge_visitors(engine, before=cutoff)
    return {"deleted": deleted, "dropped_partitions": dropped, "made_partitions": made,
            "visitors_deleted": visitors, "before": iso(cutoff),
            "retention_days": settings.retention_days}
