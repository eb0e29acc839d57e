"""The append-only audit log, and the only ways unmasked or third-party data leaves the server:
an official's trace and a citizen's 他人代查 (proxy check). Each call writes its audit row in
the same transaction that reads the data. There is no update or delete path here (and the
database refuses UPDATE on the table: see migration 0002).

Every row names its actor as authenticated (`Actor`: an official's id and name, or a
citizen's id). Rows written before named accounts (migration 0010) have no actor id: they
were written under the shared official token, and any name on them was typed by the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, or_, select
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

# Actions (the audit's `action` column).
TRACE = "trace"
PROXY_CHECK = "proxy_check"
PROXY_CHECKIN = "proxy_checkin"  # a registrar's proxy check-in (models/visitors.py)
STATUS_CHANGES = "status_changes"
EXPOSURE = "exposure"
VIOLATION = "violation"
VIOLATION_LIFT = "violation_lift"
NOTICE = "notice"
CITIZEN_CREATE = "citizen_create"
OFFICIAL_CREATE = "official_create"
OFFICIAL_DISABLE = "official_disable"
OFFICIAL_TOKEN = "official_token_rotate"
OFFICIAL_ENROL = "official_enrol"
SIGN_IN = "sign_in"
SIGN_IN_FAILED = "sign_in_failed"
EXPORT = "export"
LOGBOOK_DELETE = "logbook_delete"
AUDIT_EXPORT = "audit_export"
UNDO = "undo"
# The registrar changes models/registrars.py records
REGISTRAR_ACTIONS = ("registrar_invite", "registrar_accept", "registrar_decline",
                     "registrar_withdraw", "registrar_remove", "registrar_leave")
ACTIONS = (TRACE, PROXY_CHECK, PROXY_CHECKIN, STATUS_CHANGES, EXPOSURE, VIOLATION,
           VIOLATION_LIFT, NOTICE, CITIZEN_CREATE, OFFICIAL_CREATE, OFFICIAL_DISABLE,
           OFFICIAL_TOKEN, OFFICIAL_ENROL, SIGN_IN, SIGN_IN_FAILED, EXPORT, LOGBOOK_DELETE,
           AUDIT_EXPORT, UNDO, *REGISTRAR_ACTIONS,
           "message_reply", "message_handled")  # the last two: models/messages.py

MAX_TRACE_CHECKINS = 5000
NOT_GIVEN = "未说明 / not stated"
SHARED_TOKEN = "共享令牌（姓名未验证）/ shared token (name unverified)"
HEALTH_AUTHORITY = "卫生健康部门 / health authority"


@dataclass(frozen=True)
class Actor:
    """Who did it, as authenticated: an official (id, name) or a citizen (id)."""

    kind: str  # official | citizen | system
    id: int | None = None
    name: str | None = None
    district: str | None = None  # an official's district (None: the city level)

    @property
    def tag(self) -> str:
        return f"{self.kind}:{self.id}" if self.id is not None else self.kind

    @property
    def office(self) -> str:
        """The office a citizen is told looked at their record."""
        return f"{self.district}卫生健康部门 / {self.district} health authority" \
            if self.district else HEALTH_AUTHORITY


SYSTEM = Actor("system")


def record(session: Session, *, actor: Actor | str, action: str, target: str = "",
           citizen_id: int | None = None, purpose: str = "", detail: dict | None = None
           ) -> Audit:
    """Append one audit row (the caller commits, together with the read or write it
    documents)."""
    entry = Audit(**_values(actor, action, target, citizen_id, purpose, detail))
    session.add(entry)
    return entry


def record_on(conn, *, actor: Actor | str, action: str, target: str = "",
              citizen_id: int | None = None, purpose: str = "", detail: dict | None = None
              ) -> None:
    """`record` on a Core connection (a write made without an ORM session)."""
    conn.execute(insert(Audit).values(
        **_values(actor, action, target, citizen_id, purpose, detail), at=utcnow()))


def as_actor(actor: Actor | str) -> Actor:
    """An Actor from a "kind:id" tag ("citizen:5"), for callers that hold only the tag."""
    if isinstance(actor, Actor):
        return actor
    kind, _, rest = actor.partition(":")
    return Actor(kind, int(rest)) if rest.isdigit() else Actor(kind or "system")


def _values(actor: Actor | str, action: str, target: str, citizen_id: int | None,
            purpose: str, detail: dict | None) -> dict:
    actor = as_actor(actor)
    if actor.kind == "official":
        detail = {"office": actor.office, **(detail or {})}
    return {"actor": actor.tag[:64], "actor_id": actor.id,
            "actor_name": (actor.name or "")[:64] or None, "action": action,
            "target": target[:64], "citizen_id": citizen_id, "purpose": purpose[:500],
            "detail": detail}


def actor_public(entry: Audit) -> dict:
    """{kind, id, name}; rows from before named accounts say what they were: the shared
    token, with the name the client typed (if any) marked unverified."""
    kind, _, rest = entry.actor.partition(":")
    if entry.actor_id is not None or kind == "system":
        return {"kind": kind, "id": entry.actor_id, "name": entry.actor_name}
    if kind == "citizen" and rest.isdigit():
        return {"kind": "citizen", "id": int(rest), "name": None}
    claimed = f"（自称 / claimed: {rest}）" if rest else ""
    return {"kind": kind or "official", "id": None, "name": SHARED_TOKEN + claimed,
            "legacy": True}


def audit_public(entry: Audit) -> dict:
    return {"id": entry.id, "at": iso(entry.at), "actor": actor_public(entry),
            "action": entry.action, "target": entry.target, "citizen_id": entry.citizen_id,
            "purpose": entry.purpose, "detail": entry.detail}


def _audit_query(*, citizen_id: int | None = None, action: str | None = None,
                 actor: str | None = None, actor_id: int | None = None,
                 since: datetime | None = None, until: datetime | None = None,
                 before: int | None = None):
    query = orm_select(Audit).order_by(col(Audit.id).desc())
    if citizen_id is not None:
        query = query.where(Audit.citizen_id == citizen_id)
    if action:
        query = query.where(Audit.action == action)
    if actor:
        query = query.where(Audit.actor == actor)
    if actor_id is not None:
        query = query.where(Audit.actor_id == actor_id)
    if since is not None:
        query = query.where(col(Audit.at) >= since)
    if until is not None:
        query = query.where(col(Audit.at) < until)
    if before is not None:
        query = query.where(col(Audit.id) < before)
    return query


def list_audit(session: Session, *, limit: int = 100, **filters) -> list[dict]:
    """Audit rows, newest first; page with before=<the last id seen>. Filters: citizen_id,
    action, actor (the "kind:id" tag), actor_id, since, until (datetimes), before."""
    query = _audit_query(**filters).limit(limit)
    return [audit_public(a) for a in session.exec(query).all()]


EXPORT_MAX = 100_000


def export_rows(session: Session, **filters) -> list[list[str]]:
    """The audit for an inspector, masked: no ID number, name or phone of a citizen appears
    (targets are masked when written; details are reduced to what names no one)."""
    out = [["id", "at", "actor_kind", "actor_id", "actor_name", "action", "target",
            "citizen_id", "purpose", "office"]]
    for entry in session.exec(_audit_query(**filters).limit(EXPORT_MAX)).all():
        actor = actor_public(entry)
        detail = entry.detail or {}
        out.append([str(entry.id), iso(entry.at), actor["kind"],
                    "" if actor["id"] is None else str(actor["id"]), actor["name"] or "",
                    entry.action, entry.target, "" if entry.citizen_id is None
                    else str(entry.citizen_id), entry.purpose,
                    str(detail.get("office") or "")])
    return out


def _citizen_full(c: Citizen) -> dict:
    return {"id": c.id, "name": c.name, "id_number": c.id_number, "phone": c.phone,
            "status": c.status, "popup_kind": c.popup_kind, "reason": c.reason,
            "status_at": iso(c.status_at), "created_at": iso(c.created_at)}


_ck, _lb, _v, _sc = (Checkin.__table__, Logbook.__table__, Venue.__table__,
                     StatusChange.__table__)


def _visitor_full(v: Visitor) -> dict:
    return {"id": v.id, "name": v.name, "id_number": v.id_number, "citizen_id": v.citizen_id,
            "created_at": iso(v.created_at)}


def trace(session: Session, *, id_number: object, actor: Actor, purpose: str,
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
                        "office": detail.get("office") or HEALTH_AUTHORITY,
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
    record(session, actor=Actor("citizen", caller_id), action=PROXY_CHECK,
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
