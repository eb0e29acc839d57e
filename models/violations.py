"""Violations: an official suspends every logbook a registrar owns (scans answer 410
logbook_suspended) until the violation is lifted. Suspension never outranks revocation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Session, col
from sqlmodel import select as orm_select

from models.errors import Conflict, NotFound, ValidationFailed
from models.status import Status
from models.tables import Citizen, Logbook, Violation, utcnow
from models.timeutil import iso

_lb = Logbook.__table__
_v = Violation.__table__
_c = Citizen.__table__


def suspended_reason(reason: str) -> str:
    return f"违规暂停 / suspended for a violation: {reason}"[:500]


def _reason(value: object, field: str = "reason") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise ValidationFailed(f"{field} 须为1–500字 / {field} must be 1–500 characters")
    return value.strip()


def create_violation(session: Session, *, citizen_id: object, reason: object, actor: str
                     ) -> Violation:
    """Record a violation (the job that suspends the logbooks is enqueued by the caller)."""
    if not isinstance(citizen_id, int) or isinstance(citizen_id, bool):
        raise ValidationFailed("citizen_id 须为整数 / citizen_id must be an integer")
    text = _reason(reason)
    if session.get(Citizen, citizen_id) is None:
        raise NotFound("居民不存在 / citizen not found")
    violation = Violation(citizen_id=citizen_id, reason=text, actor=actor)
    session.add(violation)
    session.commit()
    return violation


def lift_violation(session: Session, *, violation_id: int, actor: str, reason: object
                   ) -> Violation:
    """Mark a violation lifted (the job that reactivates the logbooks is enqueued after)."""
    violation = session.get(Violation, violation_id)
    if violation is None:
        raise NotFound("违规记录不存在 / violation not found")
    if violation.lifted_at is not None:
        raise Conflict("该违规已解除 / this violation has already been lifted")
    violation.lifted_at = utcnow()
    violation.lifted_by = actor
    violation.lift_reason = _reason(reason) if reason is not None else ""
    session.add(violation)
    session.commit()
    return violation


def list_violations(session: Session, *, citizen_id: int | None = None, active: bool | None = None,
                    limit: int = 100) -> list[Violation]:
    query = orm_select(Violation).order_by(col(Violation.id).desc()).limit(limit)
    if citizen_id is not None:
        query = query.where(Violation.citizen_id == citizen_id)
    if active is not None:
        query = query.where(col(Violation.lifted_at).is_(None) if active
                            else col(Violation.lifted_at).is_not(None))
    return list(session.exec(query).all())


def violation_public(violation: Violation) -> dict:
    return {"id": violation.id, "citizen_id": violation.citizen_id, "reason": violation.reason,
            "actor": violation.actor, "created_at": iso(violation.created_at),
            "active": violation.lifted_at is None,
            "lifted_at": iso(violation.lifted_at) if violation.lifted_at else None,
            "lifted_by": violation.lifted_by, "lift_reason": violation.lift_reason}


def _events(rows, state: str, reason: str | None) -> list[dict]:
    return [{"type": "logbook", "logbook_id": r.id, "venue_id": r.venue_id, "state": state,
             "reason": reason} for r in sorted(rows, key=lambda r: r.id)]


def suspend_logbooks(conn: Connection, *, violation_id: int, now: datetime) -> list[dict]:
    """Suspend the active logbooks of the violation's registrar (idempotent; nothing when
    the violation was lifted before the job ran). Returns the feed events to publish."""
    violation = conn.execute(select(_v).where(_v.c.id == violation_id)).first()
    if violation is None:
        raise LookupError(f"violation {violation_id} not found")
    if violation.lifted_at is not None:
        return []
    reason = suspended_reason(violation.reason)
    rows = conn.execute(
        update(_lb).where(_lb.c.created_by == violation.citizen_id, _lb.c.state == "active")
        .values(state="suspended", reason=reason, state_at=now)
        .returning(_lb.c.id, _lb.c.venue_id)
    ).all()
    return _events(rows, "suspended", reason)


def reactivate_logbooks(conn: Connection, *, violation_id: int, now: datetime) -> list[dict]:
    """After a lift: the registrar's suspended logbooks are active again — unless another
    violation is still in force or the registrar is no longer green (then they stay)."""
    violation = conn.execute(select(_v).where(_v.c.id == violation_id)).first()
    if violation is None:
        raise LookupError(f"violation {violation_id} not found")
    if violation.lifted_at is None:
        return []
    others = conn.execute(select(func.count()).select_from(_v).where(
        _v.c.citizen_id == violation.citizen_id, _v.c.lifted_at.is_(None))).scalar_one()
    status = conn.execute(select(_c.c.status).where(_c.c.id == violation.citizen_id)
                          ).scalar_one()
    if others or status != Status.GREEN:
        return []
    rows = conn.execute(
        update(_lb).where(_lb.c.created_by == violation.citizen_id, _lb.c.state == "suspended")
        .values(state="active", reason=None, state_at=now)
        .returning(_lb.c.id, _lb.c.venue_id)
    ).all()
    return _events(rows, "active", None)


def active_violation(session: Session, citizen_id: int) -> Violation | None:
    """The registrar's violation in force, if any (a suspended registrar gets no new logbook)."""
    return session.exec(
        orm_select(Violation).where(Violation.citizen_id == citizen_id,
                                    col(Violation.lifted_at).is_(None)).limit(1)
    ).first()
