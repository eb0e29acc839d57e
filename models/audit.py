"""The append-only audit log, and the only ways unmasked or third-party data leaves the server:
an official's trace and a citizen's 他人代查 (proxy check). Each call writes its audit row in
the same transaction that reads the data. There is no update or delete path here (and the
database refuses UPDATE on the table: see migration 0002)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlmodel import Session, col
from sqlmodel import select as orm_select

from models.citizens import clean_name, has_id_number
from models.crypto import id_lookup
from models.errors import NotFound, ValidationFailed
from models.idnumber import parse_id_number
from models.masking import mask_id_number, mask_name
from models.tables import (
    Audit,
    Checkin,
    Citizen,
    Logbook,
    StatusChange,
    Venue,
    Visitor,
    utcnow,
)
from models.timeutil import iso

TRACE = "trace"
PROXY_CHECK = "proxy_check"
PROXY_CHECKIN = "proxy_checkin"  # a registrar's proxy check-in (models/visitors.py)
MAX_TRACE_CHECKINS = 5000
NOT_GIVEN = "未说明 / not stated"


def record(session: Session, *, actor: str, action: str, target: str = "",
           citizen_id: int | None = None, purpose: str = "", detail: dict | None = None
           ) -> Audit:
    """Append one audit row (the caller commits, together with the read it documents)."""
    entry = Audit(actor=actor[:64], action=action, target=target[:64], citizen_id=citizen_id,
                  purpose=purpose[:500], detail=detail)
    session.add(entry)
    return entry


def audit_public(entry: Audit) -> dict:
    return {"id": entry.id, "at": iso(entry.at), "actor": entry.actor, "action": entry.action,
            "target": entry.target, "citizen_id": entry.citizen_id, "purpose": entry.purpose,
            "detail": entry.detail}


def list_audit(session: Session, *, citizen_id: int | None = None, action: str | None = None,
               actor: str | None = None, before: int | None = None, limit: int = 100
               ) -> list[dict]:
    """Audit rows, newest first; page with before=<the last id seen>."""
    query = orm_select(Audit).order_by(col(Audit.id).desc()).limit(limit)
    if citizen_id is not None:
        query = query.where(Audit.citizen_id == citizen_id)
    if action:
        query = query.where(Audit.action == action)
    if actor:
        query = query.where(Audit.actor == actor)
    if before is not None:
        query = query.where(col(Audit.id) < before)
    return [audit_public(a) for a in session.exec(query).all()]


def _citizen_full(c: Citizen) -> dict:
    return {"id": c.id, "name": c.name, "id_number": c.id_number, "phone": c.phone,
            "status": c.status, "popup_kind": c.popup_kind, "reason": c.reason,
            "status_at": iso(c.status_at), "created_at": iso(c.created_at)}


_ck, _lb, _v, _sc = (Checkin.__table__, Logbook.__table__, Venue.__table__,
                     StatusChange.__table__)


def _visitor_full(v: Visitor) -> dict:
    return {"id": v.id, "name": v.name, "id_number": v.id_number, "citizen_id": v.citizen_id,
            "created_at": iso(v.created_at)}


def trace(session: Session, *, id_number: object, actor: str, purpose: str,
          detail: dict | None = None, since: datetime | None = None) -> dict:
    """An official's unmasked trace of one ID number: the citizen (null when nobody
    registered it), where they checked in, how their status changed, and the unregistered
    visitors recorded under the number by registrars' proxy check-ins (`visitors`, with the
    name given; their visits are in `checkins` with `visitor` set). Written to the audit log
    first, found or not."""
    number = parse_id_number(id_number).value
    citizen = session.exec(orm_select(Citizen).where(has_id_number(number))).first()
    visitors = session.exec(orm_select(Visitor).where(Visitor.id_hash == id_lookup(number))
                            .order_by(Visitor.id)).all()
    entry = record(session, actor=actor, action=TRACE, target=mask_id_number(number),
                   citizen_id=citizen.id if citizen else None, purpose=purpose or NOT_GIVEN,
                   detail={**(detail or {}), "found": citizen is not None,
                           "visitors": len(visitors)})
    session.commit()
    if citizen is None and not visitors:
        raise NotFound("查无此人 / no citizen with this ID number")
    whose = [_ck.c.visitor_id.in_([v.id for v in visitors])] if visitors else []
    if citizen is not None:
        whose.append(_ck.c.citizen_id == citizen.id)
    query = (select(_ck, _lb.c.label, _v.c.name.label("venue_name"), _v.c.address,
                    _v.c.district)
             .join(_lb, _lb.c.id == _ck.c.logbook_id).join(_v, _v.c.id == _ck.c.venue_id)
             .where(or_(*whose))
             .order_by(_ck.c.at.desc()).limit(MAX_TRACE_CHECKINS))
    if since is not None:
        query = query.where(_ck.c.at >= since)
    conn = session.connection()
    names = {v.id: v.name for v in visitors}
    checkins = [{"id": r.id, "at": iso(r.at), "venue_id": r.venue_id, "venue_name": r.venue_name,
                 "address": r.address, "district": r.district, "logbook_id": r.logbook_id,
                 "logbook_label": r.label, "via": r.via, "helper_id": r.helper_id,
                 "status": r.status, "popup_kind": r.popup_kind, "alert": bool(r.alert),
                 "visitor": ({"id": r.visitor_id, "name": names.get(r.visitor_id)}
                             if r.visitor_id else None)}
                for r in conn.execute(query)]
    history = [] if citizen is None else [
        {"at": iso(r.at), "old_status": r.old_status, "new_status": r.new_status,
         "popup_kind": r.popup_kind, "reason": r.reason, "batch_id": r.batch_id}
        for r in conn.execute(select(_sc).where(_sc.c.citizen_id == citizen.id)
                              .order_by(_sc.c.id.desc()).limit(500))]
    return {"citizen": _citizen_full(citizen) if citizen else None, "checkins": checkins,
            "visitors": [_visitor_full(v) for v in visitors],
            "status_history": history, "audit_id": entry.id}


def my_traces(session: Session, *, citizen_id: int, limit: int = 200) -> list[dict]:
    """When a citizen's own record was looked at, by which office, and why — and who checked
    their status for them (他人代查, masked)."""
    rows = session.exec(
        orm_select(Audit).where(Audit.citizen_id == citizen_id,
                                col(Audit.action).in_((TRACE, PROXY_CHECK, PROXY_CHECKIN)))
        .order_by(col(Audit.id).desc()).limit(limit)
    ).all()
    out = []
    for a in rows:
        detail = a.detail or {}
        if a.action == TRACE:
            out.append({"id": a.id, "at": iso(a.at), "action": a.action,
                        "office": detail.get("office") or "卫生健康部门 / health authority",
                        "purpose": a.purpose})
        else:  # 他人代查 or a registrar's proxy check-in: who saw my status (masked)
            out.append({"id": a.id, "at": iso(a.at), "action": a.action,
                        "by": detail.get("caller_masked"), "office": None, "purpose": a.purpose})
    return out


def proxy_check(session: Session, *, caller_id: int, name: object, id_number: object) -> dict:
    """他人代查: a person's status, only when the name and the ID number are the same
    person's (404 otherwise, whichever part is wrong). Every attempt is audited."""
    number = parse_id_number(id_number).value
    given = clean_name(name)
    citizen = session.exec(orm_select(Citizen).where(has_id_number(number))).first()
    match = citizen is not None and citizen.name == given
    caller = session.get(Citizen, caller_id)
    record(session, actor=f"citizen:{caller_id}", action=PROXY_CHECK,
           target=mask_id_number(number), citizen_id=citizen.id if match else None,
           purpose="他人代查 / status check for another person",
           detail={"found": match, "caller_masked": mask_name(caller.name) if caller else None})
    session.commit()
    if not match:
        raise NotFound("姓名与身份证号码不匹配或查无此人 / no person with this name and ID number")
    return {"name_masked": mask_name(citizen.name), "status": citizen.status,
            "popup_kind": citizen.popup_kind, "at": iso(utcnow())}


def clean_purpose(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 500:
        raise ValidationFailed("purpose 须为500字以内 / purpose must be at most 500 characters")
    return value.strip()
