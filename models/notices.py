"""A citizen's notice feed (/ws/me): their own status changes and announcements to everyone.

Notice ids are the feed's numbering. Whoever inserts notices holds the notice FeedLock from
the insert through the commit to the publish, so ids reach every client in increasing order.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from sqlalchemy import func, insert, select, union_all
from sqlalchemy.engine import Connection

from models.errors import ValidationFailed
from models.guidance import advice
from models.tables import Notice
from models.timeutil import iso

MAX_TEXT = 2000

_n = Notice.__table__
_iso = lru_cache(maxsize=64)(iso)  # a chunk of notices shares one timestamp


def status_event(notice_id: int, citizen_id: int, status: str, popup_kind: str | None,
                 reason: str | None, at: str) -> dict:
    return {"type": "status", "id": notice_id, "citizen_id": citizen_id, "status": status,
            "popup_kind": popup_kind, "reason": reason, "advice": advice(status, popup_kind),
            "at": at}


def notice_event(row) -> dict:
    """The /ws/me event of a notice row (status change or announcement)."""
    if row.kind == "status":
        return status_event(row.id, row.citizen_id, row.status, row.popup_kind, row.reason,
                            _iso(row.at))
    return {"type": "notice", "id": row.id, "text": row.text, "at": _iso(row.at)}


def clean_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed("text 必填 / text is required")
    if len(text) > MAX_TEXT:
        raise ValidationFailed(f"text 最多 {MAX_TEXT} 字 / text is at most {MAX_TEXT} characters")
    return text.strip()


def insert_announcement(conn: Connection, *, text: str, now: datetime) -> dict:
    """Insert an announcement to every citizen (caller holds the lock, commits, publishes)."""
    row = conn.execute(
        insert(_n).values(citizen_id=None, kind="notice", text=text, at=now).returning(*_n.c)
    ).one()
    return notice_event(row)


def _mine(citizen_id: int, after: int, limit: int):
    """Two index range scans (citizen_id, id): mine and everyone's, each in id order."""
    own = select(_n).where(_n.c.citizen_id == citizen_id, _n.c.id > after).order_by(_n.c.id)
    everyone = select(_n).where(_n.c.citizen_id.is_(None), _n.c.id > after).order_by(_n.c.id)
    both = union_all(own.limit(limit).subquery().select(),
                     everyone.limit(limit).subquery().select()).subquery()
    return select(both).order_by(both.c.id).limit(limit)


def notices_after(conn: Connection, *, citizen_id: int, after: int = 0, limit: int = 500
                  ) -> list[dict]:
    """A citizen's notices (their own and announcements) with id > after, oldest first."""
    return [notice_event(row) for row in conn.execute(_mine(citizen_id, after, limit))]


def notices_head(conn: Connection, *, citizen_id: int) -> int:
    """The newest notice id a citizen's feed holds (0 when none)."""
    own = conn.execute(select(func.max(_n.c.id)).where(_n.c.citizen_id == citizen_id)).scalar()
    everyone = conn.execute(select(func.max(_n.c.id)).where(_n.c.citizen_id.is_(None))).scalar()
    return max(own or 0, everyone or 0)


def announcements(conn: Connection, *, before: int | None = None, limit: int = 50
                  ) -> list[dict]:
    """Announcements, newest first (officials' listing)."""
    query = select(_n).where(_n.c.citizen_id.is_(None)).order_by(_n.c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(_n.c.id < before)
    return [notice_event(row) for row in conn.execute(query)]
