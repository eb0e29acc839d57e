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
_BY_IDS = select(_ck).where(_ck.c.id.in_(bindparam("ids", expanding=True)))
_INSERT_CHUNK = 500  # rows a statement: 12 parameters a row stay well inside the drivers' limits
_INSERT_COLUMNS = ("venue_id", "logbook_id", "citizen_id", "helper_id", "via", "status",
                   "popup_kind", "alert", "minor", "name_masked", "id_masked", "at")
_sql: dict[tuple[str, str, int], str] = {}


def _values(dialect, columns: int, rows: int) -> str:
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    one = "(" + ", ".join([mark] * columns) + ")"
    return ", ".join([one] * rows)


def _statement(dialect, kind: str, rows: int) -> str:
    """The SQL text of a `rows`-row statement (cached per dialect, kind and size)."""
    key = (dialect.name, kind, rows)
    sql = _sql.get(key)
    if sql is None:
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        if kind == "insert":
            sql = (f"INSERT INTO {_ck.name} ({', '.join(_INSERT_COLUMNS)}) VALUES "
                   f"{_values(dialect, len(_INSERT_COLUMNS), rows)} "
                   "RETURNING id, citizen_id, logbook_id")
        else:
            # The batch's own (citizen, logbook) pairs joined to the index on (citizen_id,
            # logbook_id, at): one index seek a pair. (A row-value IN would be neater, but
            # SQLite then scans every check-in of the last minute.)
            sql = (f"SELECT ck.id, ck.citizen_id, ck.logbook_id FROM "
                   f"(VALUES {_values(dialect, 2, rows)}) AS p "
                   f"JOIN {_ck.name} ck ON ck.citizen_id = p.column1 "
                   f"AND ck.logbook_id = p.column2 AND ck.at >= {mark}")
        _sql[key] = sql
    return sql


def _bind_at(conn: Connection, value: datetime):
    """A timestamp as the driver takes it for `checkin.at` (SQLite: a naive UTC string)."""
    # dialect_impl: the dialect's own DATETIME (SQLite's writes microseconds always, so the
    # stored strings compare in time order); the generic type would let sqlite3 format it.
    process = _ck.c.at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process(value) if process else value


def _recent(conn: Connection, pairs: list[tuple[int, int]], since: datetime) -> list:
    """The check-ins since `since` of these (citizen, logbook) pairs, full rows."""
    ids: list[int] = []
    for start in range(0, len(pairs), _INSERT_CHUNK):
        chunk = pairs[start:start + _INSERT_CHUNK]
        params = [x for pair in chunk for x in pair]
        params.append(_bind_at(conn, since))
        sql = _statement(conn.dialect, "recent", len(chunk))
        ids += [row[0] for row in conn.exec_driver_sql(sql, tuple(params))]
    return list(conn.execute(_BY_IDS, {"ids": ids})) if ids else []


def _insert(conn: Connection, rows: list[dict], at: datetime) -> dict[tuple[int, int], int]:
    """Insert the rows; returns (citizen, logbook) → new id.

    One multi-row INSERT … RETURNING per chunk, values bound straight through the driver: the
    ORM/Core per-row machinery was most of a batch's cost. `at` is the same for every row, so
    its column type converts it once. RETURNING order is not guaranteed, so rows are matched
    back by (citizen, logbook), which is unique inside a batch.
    """
    at_value = _bind_at(conn, at)
    ids: dict[tuple[int, int], int] = {}
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start:start + _INSERT_CHUNK]
        params: list = []
        for r in chunk:
            params += (r["venue_id"], r["logbook_id"], r["citizen_id"], r["helper_id"], r["via"],
                       r["status"], r["popup_kind"], r["alert"], r["minor"], r["name_masked"],
                       r["id_masked"], at_value)
        result = conn.exec_driver_sql(_statement(conn.dialect, "insert", len(chunk)),
                                      tuple(params))
        for checkin_id, citizen_id, logbook_id in result:
            ids[(citizen_id, logbook_id)] = checkin_id
    return ids


def record_checkins(
    conn: Connection, requests: list[CheckinRequest], *, now: datetime
) -> tuple[list[CheckinResult | DomainError], list[dict]]:
    """Record a batch of check-ins in the caller's transaction (the caller commits).

    Returns one result or domain error per request, in order, and the feed events of the
    new check-ins in id order (to publish after the commit). Four statements per batch,
    whatever its size: logbooks, citizens, the 60 s look-back, the insert.
    """
    codes = sorted({r.code for r in requests if r.code})
    lb_ids = sorted({r.logbook_id for r in requests if r.logbook_id is not None})
    by_code = ({r.code: r for r in conn.execute(_LOGBOOKS_BY_CODE, {"codes": codes})}
               if codes else {})
    by_id = {r.id: r for r in conn.execute(_LOGBOOKS_BY_ID, {"ids": lb_ids})} if lb_ids else {}
    by_id.update({r.id: r for r in by_code.values()})
    citizen_ids = sorted({r.citizen_id for r in requests})
    citizens = {r.id: r for r in conn.execute(_CITIZENS, {"ids": citizen_ids})}

    # Which logbook and citizen each request names, or the error it gets.
    resolved: list[tuple[int, int] | DomainError] = []
    for req in requests:
        lb = by_code.get(req.code) if req.code else by_id.get(req.logbook_id)
        if lb is None:
            resolved.append(UnknownCode("无效的登记码 / unknown logbook code"))
        elif lb.state != "active":
            resolved.append(LogbookUnavailable(lb.state, lb.reason))
        elif req.citizen_id not in citizens:
            resolved.append(ValidationFailed("未知的居民 / unknown citizen"))
        else:
            resolved.append((req.citizen_id, lb.id))

    pairs = sorted({key for key in resolved if isinstance(key, tuple)})
    recent: dict[tuple[int, int], dict] = {}  # key → the public check-in it resolves to
    if pairs:
        since = now - timedelta(seconds=DEDUP_SECONDS)
        latest: dict[tuple[int, int], object] = {}
        for row in _recent(conn, pairs, since):
            key = (row.citizen_id, row.logbook_id)
            if key not in latest or row.id > latest[key].id:
                latest[key] = row
        for key, row in latest.items():
            recent[key] = public_checkin(row, by_id[row.logbook_id].label)

    today = now.astimezone(BEIJING).date()
    at_iso = iso(now)
    new_rows: dict[tuple[int, int], dict] = {}
    for key, req in zip(resolved, requests, strict=True):
        if not isinstance(key, tuple) or key in recent or key in new_rows:
            continue
        citizen, lb = citizens[key[0]], by_id[key[1]]
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
        }

    events: list[dict] = []
    if new_rows:
        ids = _insert(conn, list(new_rows.values()), now)
        for key, row in new_rows.items():
            event = {
                "type": "checkin",
                "id": ids[key],
                "venue_id": row["venue_id"],
                "logbook_id": row["logbook_id"],
                "logbook_label": by_id[row["logbook_id"]].label,
                "name": row["name_masked"],
                "id_number": row["id_masked"],
                "status": row["status"],
                "popup_kind": row["popup_kind"],
                "alert": row["alert"],
                "minor": row["minor"],
                "via": row["via"],
                "at": at_iso,
            }
            recent[key] = event
            events.append(event)
        events.sort(key=lambda e: e["id"])

    results: list[CheckinResult | DomainError] = []
    for key in resolved:
        if isinstance(key, DomainError):
            results.append(key)
            continue
        # The first request for a new pair created it; a repeat in the same batch, or a
        # pair already checked in within 60 s, gets that check-in (200).
        created = key in new_rows
        if created:
            new_rows.pop(key)
        results.append(CheckinResult(recent[key], by_id[key[1]].venue_name, created=created))
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



