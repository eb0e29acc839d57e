"""Check-ins: many scans recorded in one transaction (group commit), with the 60 s rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from models.errors import DomainError, LogbookUnavailable, UnknownCode, ValidationFailed
from models.idnumber import MINOR_AGE
from models.masking import mask_id_number, mask_name
from models.status import is_abnormal
from models.tables import Checkin, Citizen, Logbook, Venue
from models.timeutil import BEIJING, iso

DEDUP_SECONDS = 60


@dataclass(frozen=True)
class CheckinRequest:
    """A scan (code set) or a proxy check-in by a registrar (logbook_id set)."""

    citizen_id: int
    code: str | None = None
    logbook_id: int | None = None
    via: str = "scan"
    helper_id: int | None = None


@dataclass(frozen=True)
class CheckinResult:
    checkin: dict  # the masked public form (what a feed and a listing show)
    venue_name: str
    created: bool  # False: the same citizen at the same logbook within 60 s


def is_minor_id(id_number: str, today: date) -> bool:
    born = date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return years < MINOR_AGE


def public_checkin(row, label: str) -> dict:
    """The masked check-in as registrars see it, in a feed, a listing or an export."""
    return {
        "type": "checkin",
        "id": row.id,
        "venue_id": row.venue_id,
        "logbook_id": row.logbook_id,
        "logbook_label": label,
        "name": row.name_masked,
        "id_number": row.id_masked,
        "status": row.status,
        "popup_kind": row.popup_kind,
        "alert": bool(row.alert),
        "minor": bool(row.minor),
        "via": row.via,
        "at": iso(row.at),
    }


_lb = Logbook.__table__
_v = Venue.__table__
_c = Citizen.__table__
_ck = Checkin.__table__

_LOGBOOKS_BY_CODE = (
    select(_lb.c.id, _lb.c.venue_id, _lb.c.label, _lb.c.state, _lb.c.reason, _lb.c.code,
           _v.c.name.label("venue_name"))
    .join(_v, _v.c.id == _lb.c.venue_id)
    .where(_lb.c.code.in_(bindparam("codes", expanding=True)))
)
_LOGBOOKS_BY_ID = (
    select(_lb.c.id, _lb.c.venue_id, _lb.c.label, _lb.c.state, _lb.c.reason, _lb.c.code,
           _v.c.name.label("venue_name"))
    .join(_v, _v.c.id == _lb.c.venue_id)
    .where(_lb.c.id.in_(bindparam("ids", expanding=True)))
)
_CITIZENS = select(_c.c.id, _c.c.name, _c.c.id_number, _c.c.status, _c.c.popup_kind).where(
    _c.c.id.in_(bindparam("ids", expanding=True))
)
_RECENT = select(_ck).where(
    _ck.c.citizen_id.in_(bindparam("ids", expanding=True)), _ck.c.at >= bindparam("since")
)


def record_checkins(
    conn: Connection, requests: list[CheckinRequest], *, now: datetime
) -> tuple[list[CheckinResult | DomainError], list[dict]]:
    """Record a batch of check-ins in the caller's transaction (the caller commits).

    Returns one result or domain error per request, in order, and the feed events of the
    new check-ins (to publish after the commit).
    """
    codes = sorted({r.code for r in requests if r.code})
    lb_ids = sorted({r.logbook_id for r in requests if r.logbook_id is not None})
    by_code = (
        {r.code: r for r in conn.execute(_LOGBOOKS_BY_CODE, {"codes": codes})} if codes else {}
    )
    by_id = {r.id: r for r in conn.execute(_LOGBOOKS_BY_ID, {"ids": lb_ids})} if lb_ids else {}
    by_id.update({r.id: r for r in by_code.values()})
    citizen_ids = sorted({r.citizen_id for r in requests})
    citizens = {r.id: r for r in conn.execute(_CITIZENS, {"ids": citizen_ids})}
    since = now - timedelta(seconds=DEDUP_SECONDS)
    recent: dict[tuple[int, int], object] = {}
    for row in conn.execute(_RECENT, {"ids": citizen_ids, "since": since}):
        key = (row.citizen_id, row.logbook_id)
        if key not in recent or row.id > recent[key].id:
            recent[key] = row

    today = now.astimezone(BEIJING).date()
    outcome: list[CheckinResult | DomainError | tuple[int, int]] = []
    new_rows: dict[tuple[int, int], dict] = {}
    for req in requests:
        lb = by_code.get(req.code) if req.code else by_id.get(req.logbook_id)
        citizen = citizens.get(req.citizen_id)
        if lb is None:
            outcome.append(UnknownCode("无效的登记码 / unknown logbook code"))
            continue
        if lb.state != "active":
            outcome.append(LogbookUnavailable(lb.state, lb.reason))
            continue
        if citizen is None:
            outcome.append(ValidationFailed("未知的居民 / unknown citizen"))
            continue
        key = (citizen.id, lb.id)
        if key in recent or key in new_rows:
            outcome.append(key)
            continue
        new_rows[key] = {
            "venue_id": lb.venue_id,
            "logbook_id": lb.id,
            "citizen_id": citizen.id,
            "helper_id": req.helper_id,
            "via": req.via,
            "status": citizen.status,
            "popup_kind": citizen.popup_kind,
            "alert": is_abnormal(citizen.status),
            "minor": is_minor_id(citizen.id_number, today),
            "name_masked": mask_name(citizen.name),
            "id_masked": mask_id_number(citizen.id_number),
            "at": now,
        }
        outcome.append(key)

    events: list[dict] = []
    created: set[tuple[int, int]] = set()
    if new_rows:
        # One multi-row INSERT … RETURNING; rows are matched back by (citizen, logbook),
        # which is unique inside a batch, because RETURNING order is not guaranteed.
        stmt = _ck.insert().returning(_ck)
        for row in conn.execute(stmt, list(new_rows.values())):
            key = (row.citizen_id, row.logbook_id)
            recent[key] = row
            created.add(key)
        for key in new_rows:
            row = recent[key]
            events.append(public_checkin(row, by_id[row.logbook_id].label))
        events.sort(key=lambda e: e["id"])

    results: list[CheckinResult | DomainError] = []
    for item in outcome:
        if isinstance(item, DomainError):
            results.append(item)
            continue
        row = recent[item]
        lb = by_id[row.logbook_id]
        results.append(
            CheckinResult(public_checkin(row, lb.label), lb.venue_name, created=item in created)
        )
    return results, events


def checkins_after(conn: Connection, *, venue_id: int | None = None, logbook_id: int | None = None,
                   after: int = 0, limit: int = 500) -> list[dict]:
    """Check-ins of a venue or a logbook with id > after, oldest first (replay, listing)."""
    query = (
        select(_ck, _lb.c.label)
        .join(_lb, _lb.c.id == _ck.c.logbook_id)
        .where(_ck.c.id > after)
        .order_by(_ck.c.id)
        .limit(limit)
    )
    if venue_id is not None:
        query = query.where(_ck.c.venue_id == venue_id)
    if logbook_id is not None:
        query = query.where(_ck.c.logbook_id == logbook_id)
    return [public_checkin(row, row.label) for row in conn.execute(query)]



