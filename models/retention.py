"""Retention: check-ins are kept for tracing for a fixed number of days, then deleted —
including those of deleted logbooks, which stay traceable until then."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from models.tables import Checkin

_ck = Checkin.__table__
PURGE_CHUNK = 5000  # rows per transaction: short write locks, scans keep flowing


def purge_checkins(engine: Engine, *, before: datetime, chunk: int = PURGE_CHUNK) -> int:
    """Delete every check-in older than `before`, oldest first, a chunk per transaction;
    returns how many were deleted. Safe to run twice or concurrently."""
    deleted = 0
    while True:
        with engine.begin() as conn:
            ids = list(conn.execute(select(_ck.c.id).where(_ck.c.at < before)
                                    .order_by(_ck.c.id).limit(chunk)).scalars())
            if not ids:
                return deleted
            conn.execute(delete(_ck).where(_ck.c.id.in_(ids)))
        deleted += len(ids)
