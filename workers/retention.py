"""The retention job: check-ins older than SCANBOOK_RETENTION_DAYS (default 28) are deleted."""

from __future__ import annotations

from datetime import timedelta

from models.retention import purge_checkins as _purge
from models.tables import utcnow
from models.timeutil import iso
from workers.context import resources


def purge_checkins() -> dict:
    """Run by the cron scheduler (workers.schedule); idempotent."""
    settings, engine, _client, _lock = resources()
    cutoff = utcnow() - timedelta(days=settings.retention_days)
    deleted = _purge(engine, before=cutoff)
    return {"deleted": deleted, "before": iso(cutoff), "retention_days": settings.retention_days}
