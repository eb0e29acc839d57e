"""The status engine: status changes (officials' batches, exposures, undos, the itinerary
platform's passed check: models/itinerary.py) and their consequences — a notice to the
citizen, and revocation of every logbook a registrar owns once they are no longer green.

Bulk SQL on a Connection (one UPDATE per distinct status, multi-row INSERTs): a 100,000-row
batch must run at well over 10,000 changes a second on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial

from sqlalchemy import (
    ARRAY,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection

from models.crypto import id_lookup
from models.errors import Conflict, DomainError, NotFound, ValidationFailed
from models.idnumber import parse_id_number
from models.masking import mask_id_number, mask_name, mask_submitted_id
from models.notices import notice_event, status_event
from models.status import Decision, Status, decide, parse_status
from models.stays import overlapping
from models.tables import (
    Batch,
    Checkin,
    Citizen,
    Logbook,
    Notice,
    Registrar,
    StatusChange,
    UTCDateTime,
    Venue,
)
from models.timeutil import iso, parse_iso

REVOKED_REASON = "登记员健康状态异常 / the registrar's health status is no longer green"
MAX_REASON = 500

_c = Citizen.__table__
_sc = StatusChange.__table__
_n = Notice.__table__
_lb = Logbook.__table__
_r = Registrar.__table__
_ck = Checkin.__table__
_b = Batch.__table__
_v = Venue.__table__


@dataclass(frozen=True)
class Change:
    """One citizen's new status (row: the row number in the official's request, if any;
    id_masked: their masked ID number when the caller has it, for the per-person result)."""

    citizen_id: int
    status: str
    popup_kind: str | None
    reason: str
    row: int | None = None
    id_masked: str | None = None


@dataclass
class ChangeOutcome:
    """What a run did; notices and logbook events wait here until after the commit."""

    applied: int = 0
    unchanged: int = 0  # the citizen already had this status
    skipped: int = 0  # already applied by an earlier (interrupted) run of the same batch
    revoked_logbooks: int = 0
    ended_duties: int = 0
    errors: list[dict] = field(default_factory=list)
    notices: list[dict] = field(default_factory=list)
    logbook_events: list[dict] = field(default_factory=list)
    # Per person, masked (results are stored in clear and shown on screens): what the batch
    # did to them — changed, kept (an equal or stricter state), not_found.
    people: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        tally = {d: 0 for d in PERSON_RESULTS}
        for person in self.people:
            tally[person["result"]] += 1
        people = self.people
        if len(people) > PEOPLE_LISTED:
            # The exceptions (kept, not found) first: the changed are in the status history.
            exceptions = [p for p in people if p["result"] != Decision.CHANGED]
            changed = [p for p in people if p["result"] == Decision.CHANGED]
            people = (exceptions + changed)[:PEOPLE_LISTED]
        people = sorted(people, key=lambda p: (p["row"] is None, p["row"] or 0,
                                               p["citizen_id"] or 0))
        return {"applied": self.applied, "unchanged": self.unchanged, "skipped": self.skipped,
                "revoked_logbooks": self.revoked_logbooks, "ended_duties": self.ended_duties,
                "errors": self.errors, **tally, "people": people,
                "people_omitted": len(self.people) - len(people)}


NOT_FOUND = "not_found"
PERSON_RESULTS = (Decision.CHANGED.value, Decision.KEPT.value, NOT_FOUND)
# A result lists at most this many people (the counts are always whole): 100,000 entries are
# ~15 MB of JSON, stored with the batch, kept by RQ and read by every console page that lists
# batches. 10,000 is ~1.5 MB.
PEOPLE_LISTED = int(os.environ.get("SCANBOOK_RESULT_PEOPLE", "10000"))


def person(result: str, *, row: int | None, citizen_id: int | None, name: str | None,
           id_masked: str | None, before: str | None = None, after: str | None = None,
           note: str | None = None) -> dict:
    """One entry of a job's per-person result (name and ID number already masked)."""
    entry = {"row": row, "citizen_id": citizen_id, "name": name, "id_number": id_masked,
             "result": result, "before": before, "after": after}
    if note:
        entry["note"] = note
    return entry


def row_error(row: int | None, id_number: object, exc: DomainError) -> dict:
    """A per-row error of a batch: the row index (what officials fix their file by) and the
    ID number masked — results are stored in `batch.result` in clear and shown on screens."""
    return {"row": row, "id_number": mask_submitted_id(id_number),
            "error": exc.code, "message": exc.message}


def clean_reason(reason: object, status: str) -> str:
    """Every status but green carries a reason (green may go without one)."""
    if reason is None:
        reason = ""
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise ValidationFailed(f"reason 须为{MAX_REASON}字以内的字符串 / reason must be a string "
                               f"of at most {MAX_REASON} characters")
    reason = reason.strip()
    if not reason and status != Status.GREEN:
        raise ValidationFailed("异常状态须注明原因 / a status other than green needs a reason")
    return reason


def validate_row(row: object, today: date | None = None) -> tuple[str, str, str | None, str]:
    """One row of a status-change batch → (id number, status, popup kind, reason)."""
    if not isinstance(row, dict):
        raise ValidationFailed("每行须为对象 / each change must be an object")
    id_number = parse_id_number(row.get("id_number"), today=today).value
    status, popup = parse_status(row.get("status"), row.get("popup_kind"))
    reason = clean_reason(row.get("reason"), status)
    return id_number, status.value, popup.value if popup else None, reason


@dataclass(frozen=True)
class ParsedRow:
    row: int
    id_number: str
    status: str
    popup_kind: str | None
    reason: str


def parse_rows(rows: list) -> tuple[list[ParsedRow], list[dict]]:
    """Validate every row of a batch. Invalid rows and repeats of an ID number already in the
    batch (the first row applies) become per-row errors; none is fatal to the batch."""
    parsed: list[ParsedRow] = []
    errors: list[dict] = []
    first: dict[str, int] = {}
    today = date.today()
    for number, row in enumerate(rows):
        try:
            id_number, status, popup, reason = validate_row(row, today)
        except DomainError as exc:
            raw = row.get("id_number") if isinstance(row, dict) else None
            errors.append(row_error(number, raw, exc))
            continue
        if id_number in first:
            errors.append(row_error(number, id_number, Conflict(
                f"与第 {first[id_number]} 行重复，以该行为准 / repeats row {first[id_number]}, "
                "which applies")))
            continue
        first[id_number] = number
        parsed.append(ParsedRow(number, id_number, status, popup, reason))
    return parsed, errors


# ID numbers are stored encrypted: rows are found by their keyed hash (models/crypto.py).
_BY_ID_HASH = {  # PostgreSQL: one array parameter (see _CURRENT)
    "postgresql": select(_c.c.id, _c.c.id_hash).where(
        _c.c.id_hash == any_(bindparam("hashes", type_=ARRAY(String))))}
_BY_ID_HASH_IN = select(_c.c.id, _c.c.id_hash).where(
    _c.c.id_hash.in_(bindparam("hashes", expanding=True)))


def resolve_rows(conn: Connection, rows: list[ParsedRow], outcome: ChangeOutcome
                 ) -> list[Change]:
    """Parsed rows → changes by citizen id; unknown ID numbers become per-row errors."""
    if not rows:
        return []
    query = _BY_ID_HASH.get(conn.dialect.name, _BY_ID_HASH_IN)
    hashes = [id_lookup(r.id_number) for r in rows]
    ids = {id_hash: citizen_id for citizen_id, id_hash in conn.execute(query, {"hashes": hashes})}
    changes = []
    for r, id_hash in zip(rows, hashes, strict=True):
        citizen_id = ids.get(id_hash)
        if citizen_id is None:
            outcome.errors.append(row_error(r.row, r.id_number, NotFound(
                "查无此人 / no citizen with this ID number")))
            outcome.people.append(person(NOT_FOUND, row=r.row, citizen_id=None, name=None,
                                         id_masked=mask_id_number(r.id_number)))
            continue
        changes.append(Change(citizen_id, r.status, r.popup_kind, r.reason, r.row,
                              mask_id_number(r.id_number)))
    return changes


# Each citizen's current status, and whether this batch already changed them (a re-run).
def _current(ids_clause):
    return (select(_c.c.id, _c.c.name, _c.c.status, _c.c.popup_kind, _sc.c.id.label("done"),
                   _sc.c.old_status.label("done_old"))
            .select_from(_c.outerjoin(_sc, and_(_sc.c.citizen_id == _c.c.id,
                                                _sc.c.batch_id == bindparam("batch_id"))))
            .where(ids_clause))


# PostgreSQL takes the ids as one array parameter (= ANY), which it plans and binds far
# faster than a 2,000-item IN list; SQLite has no arrays and is quick with the IN list.
_CURRENT = {"postgresql": _current(_c.c.id == any_(bindparam("ids", type_=ARRAY(Integer))))}
_CURRENT_IN = _current(_c.c.id.in_(bindparam("ids", expanding=True)))
_LAST_CHANGE = select(func.coalesce(func.max(_sc.c.id), 0))


def current_states(conn: Connection, ids: list[int], *, chunk: int = 2000
                   ) -> dict[int, tuple[str, str | None]]:
    """Citizens' current (status, popup kind), read only (a preview)."""
    query = _CURRENT.get(conn.dialect.name, _CURRENT_IN)
    states: dict[int, tuple[str, str | None]] = {}
    for start in range(0, len(ids), chunk):
        for row in conn.execute(query, {"ids": ids[start:start + chunk], "batch_id": 0}):
            states[row.id] = (row.status, row.popup_kind)
    return states


def apply_changes(conn: Connection, *, batch_id: int, changes: list[Change],
                  outcome: ChangeOutcome, now: datetime, raise_only: bool = False) -> None:
    """Apply changes in the caller's transaction; the caller holds the notice lock, commits,
    then publishes `outcome.notices` and `outcome.logbook_events`.

    Idempotent per (batch, citizen): a citizen this batch already changed (in an earlier,
    interrupted run) is skipped, so a re-run changes nothing twice and notifies no one twice.
    A citizen who already has the status is left alone (no history row, no notice), and so,
    with `raise_only` (a measure for many: an exposure), is one whose status is stricter
    (models.status.decide). Every person lands in `outcome.people`.

    Set-based: the history rows go in with one multi-row INSERT; the citizens' new status,
    the notices and the revocations all follow from those rows in SQL (UPDATE … FROM,
    INSERT … SELECT), so ids cross the wire once. Every status-change insert happens under
    the notice lock, so the rows after the last id seen before the insert are this call's.
    """
    if not changes:
        return
    ids = sorted({c.citizen_id for c in changes})
    query = _CURRENT.get(conn.dialect.name, _CURRENT_IN)
    current = {row.id: row for row in conn.execute(query, {"ids": ids, "batch_id": batch_id})}
    history: list[dict] = []
    seen: set[int] = set()
    masked = masked_ids(conn, [c.citizen_id for c in changes
                                if c.id_masked is None and c.citizen_id in current])
    for change in changes:
        cid = change.citizen_id
        old = current.get(cid)
        if old is None:
            outcome.errors.append(row_error(change.row, None, NotFound(
                f"居民 {cid} 不存在 / citizen {cid} not found")))
            outcome.people.append(person(NOT_FOUND, row=change.row, citizen_id=cid,
                                         name=None, id_masked=change.id_masked))
            continue
        if cid in seen:  # the same person twice in one call: the first applies
            outcome.skipped += 1
            continue
        seen.add(cid)
        entry = partial(person, row=change.row, citizen_id=cid, name=mask_name(old.name),
                        id_masked=change.id_masked or masked.get(cid))
        if old.done is not None:  # changed by an earlier run of this batch
            outcome.skipped += 1
            outcome.people.append(entry(Decision.CHANGED, before=old.done_old,
                                        after=change.status))
            continue
        verdict = decide((old.status, old.popup_kind), (change.status, change.popup_kind),
                         raise_only=raise_only)
        if verdict is Decision.KEPT:
            if old.status == change.status and old.popup_kind == change.popup_kind:
                outcome.unchanged += 1
            outcome.people.append(entry(Decision.KEPT, before=old.status, after=old.status))
            continue
        outcome.people.append(entry(Decision.CHANGED, before=old.status, after=change.status))
        history.append({"batch_id": batch_id, "citizen_id": cid, "old_status": old.status,
                        "new_status": change.status, "popup_kind": change.popup_kind,
                        "reason": change.reason, "at": now})
    if not history:
        return
    mine = _write_changes(conn, history, batch_id=batch_id, now=now)
    notices = insert(_n).from_select(
        ["citizen_id", "kind", "status", "popup_kind", "reason", "at", "batch_id"],
        select(_sc.c.citizen_id, literal("status"), _sc.c.new_status, _sc.c.popup_kind,
               _sc.c.reason, _sc.c.at, _sc.c.batch_id).where(mine).order_by(_sc.c.id),
    ).returning(_n.c.id, _n.c.citizen_id)
    # The events are built from what we inserted (no datetime parsing of 2,000 rows back);
    # RETURNING order is not guaranteed: they are sorted by id.
    by_citizen = {h["citizen_id"]: h for h in history}
    at = iso(now)
    for notice_id, cid in sorted(conn.execute(notices).all()):
        h = by_citizen[cid]
        outcome.notices.append(status_event(notice_id, cid, h["new_status"], h["popup_kind"],
                                            h["reason"], at))
    outcome.applied += len(history)
    if any(h["new_status"] != Status.GREEN for h in history):
        revoke_registrars(conn, select(_sc.c.citizen_id).where(
            mine, _sc.c.new_status != Status.GREEN.value), outcome, now=now)


def masked_ids(conn: Connection, ids: list[int]) -> dict[int, str]:
    """Masked ID numbers of citizens (decrypted here only for callers that had none)."""
    if not ids:
        return {}
    rows = conn.execute(select(_c.c.id, _c.c.id_number).where(_c.c.id.in_(ids)))
    return {cid: mask_id_number(number) for cid, number in rows}


# PostgreSQL: arrays (unnest) instead of 2,000 bound rows. The citizens are updated first, so
# the history rows' foreign-key checks find those rows already locked by this transaction.
_PG_ARRAYS = ("unnest(CAST(:citizen_ids AS integer[]), CAST(:olds AS varchar[]), "
              "CAST(:news AS varchar[]), CAST(:popups AS varchar[]), "
              "CAST(:reasons AS varchar[])) AS u (citizen_id, old, new, popup, reason)")
_PG_UPDATE = text(
    "UPDATE citizen SET status = u.new, popup_kind = u.popup, reason = u.reason, "
    f"status_at = :at FROM {_PG_ARRAYS} WHERE citizen.id = u.citizen_id"
).bindparams(bindparam("at", type_=UTCDateTime()))
_PG_HISTORY = text(
    "INSERT INTO statuschange (batch_id, citizen_id, old_status, new_status, popup_kind, "
    f"reason, at) SELECT :batch_id, u.citizen_id, u.old, u.new, u.popup, u.reason, :at "
    f"FROM {_PG_ARRAYS}"
).bindparams(bindparam("at", type_=UTCDateTime()))


def _write_changes(conn: Connection, history: list[dict], *, batch_id: int, now: datetime):
    """Insert the history rows and give the citizens their new status; returns the condition
    that selects this call's history rows."""
    postgres = conn.dialect.name == "postgresql"
    last = conn.execute(_LAST_CHANGE).scalar_one()
    if postgres:
        arrays = {"batch_id": batch_id, "at": now,
                  "citizen_ids": [h["citizen_id"] for h in history],
                  "olds": [h["old_status"] for h in history],
                  "news": [h["new_status"] for h in history],
                  "popups": [h["popup_kind"] for h in history],
                  "reasons": [h["reason"] for h in history]}
        conn.execute(_PG_UPDATE, arrays)
        conn.execute(_PG_HISTORY, arrays)
    else:
        conn.execute(insert(_sc), history)
    # The rows after `last` are exactly ours (checked, not assumed): a primary-key range, so
    # each chunk costs the same however many rows the batch already has.
    ours, newest = conn.execute(select(func.count(), func.max(_sc.c.id)).where(
        _sc.c.id > last)).one()
    if ours != len(history):
        raise RuntimeError("status changes were inserted without the notice lock")
    # Closed at both ends, so even with stale statistics the planner sees a small range.
    mine = _sc.c.id.between(last + 1, newest)
    if not postgres:
        conn.execute(update(_c).where(_c.c.id == _sc.c.citizen_id, mine).values(
            status=_sc.c.new_status, popup_kind=_sc.c.popup_kind, reason=_sc.c.reason,
            status_at=_sc.c.at))
    return mine


def revoke_registrars(conn: Connection, citizen_ids: list[int] | Select, outcome: ChangeOutcome,
                      *, now: datetime) -> None:
    """Registrars who are no longer green: every logbook they own is revoked at once (scans
    answer 410 logbook_revoked) and their co-registrar duty elsewhere ends. A revoked
    logbook never comes back: a registrar green again applies for a new one."""
    books = conn.execute(
        update(_lb)
        .where(_lb.c.created_by.in_(citizen_ids), _lb.c.state.in_(("active", "suspended")))
        .values(state="revoked", reason=REVOKED_REASON, state_at=now)
        .returning(_lb.c.id, _lb.c.venue_id)
    ).all()
    outcome.revoked_logbooks += len(books)
    outcome.logbook_events.extend(
        {"type": "logbook", "logbook_id": b.id, "venue_id": b.venue_id, "state": "revoked",
         "reason": REVOKED_REASON} for b in sorted(books, key=lambda b: b.id))
    ended = conn.execute(
        update(_r).where(_r.c.citizen_id.in_(citizen_ids), _r.c.role == "co",
                         _r.c.active.is_(True)).values(active=False)
    )
    outcome.ended_duties += max(ended.rowcount or 0, 0)


def applied_count(conn: Connection, batch_id: int) -> int:
    return conn.execute(select(func.count()).select_from(_sc)
                        .where(_sc.c.batch_id == batch_id)).scalar_one()


def batch_notices(conn: Connection, batch_id: int) -> list[dict]:
    """The notices a batch already produced, oldest first: a re-run publishes them again in
    case the interrupted run died between its commit and its publish (clients drop ids they
    have already seen, so nobody sees one twice)."""
    rows = conn.execute(select(_n).where(_n.c.batch_id == batch_id).order_by(_n.c.id))
    return [notice_event(row) for row in rows]


# --- exposures -----------------------------------------------------------------------------

_TIME = re.compile(r"[T ](\d{2})(?::?(\d{2})(?::?(\d{2})(?:[.,](\d+))?)?)?")


def precision(value: str) -> timedelta:
    """The unit of the last field an ISO 8601 time gives: 12:00 → a minute, 12:00:00 → a
    second, 12:00:00.250 → a millisecond."""
    match = _TIME.search(value)
    if match is None:
        return timedelta(days=1)
    _hour, minute, second, fraction = match.groups()
    if fraction:
        return timedelta(microseconds=10 ** max(6 - len(fraction), 0))
    if second:
        return timedelta(seconds=1)
    if minute:
        return timedelta(minutes=1)
    return timedelta(hours=1)


def exposure_payload(body: dict) -> dict:
    """Validate an exposure request. The window is inclusive at both ends at the precision of
    the timestamps given: end 12:00:00 covers 12:00:00.999999; it is stored as [start, end+unit).
    """
    venue_id = body.get("venue_id")
    if not isinstance(venue_id, int) or isinstance(venue_id, bool):
        raise ValidationFailed("venue_id 须为整数 / venue_id must be an integer")
    start = parse_iso(body.get("start"), "start")
    end = parse_iso(body.get("end"), "end")
    if end < start:
        raise ValidationFailed("end 不能早于 start / end must not be before start")
    status, popup = parse_status(body.get("status"), body.get("popup_kind"))
    reason = clean_reason(body.get("reason"), status)
    end_before = end + precision(body["end"])
    return {"venue_id": venue_id, "start": body["start"], "end": body["end"],
            "from": start.isoformat(), "until": end_before.isoformat(),
            "status": status.value, "popup_kind": popup.value if popup else None,
            "reason": reason}


def exposed_citizens(conn: Connection, payload: dict) -> list[tuple[int, str]]:
    """Everyone whose stay at the venue overlaps the window (models/stays.overlapping), once
    each, in id order, with the masked ID number their check-ins carry (for the job's
    per-person result). Unregistered visitors have no citizen: models/visitors.
    exposed_visitors counts them."""
    start = datetime.fromisoformat(payload["from"])
    until = datetime.fromisoformat(payload["until"])
    rows = conn.execute(
        select(_ck.c.citizen_id, func.min(_ck.c.id_masked))
        .where(*overlapping(conn, payload["venue_id"], start, until),
               _ck.c.citizen_id.is_not(None))
        .group_by(_ck.c.citizen_id).order_by(_ck.c.citizen_id))
    return [(cid, masked) for cid, masked in rows]


def exposure_changes(payload: dict, exposed: list[tuple[int, str]]) -> list[Change]:
    """An exposure as changes: everyone exposed gets its status (raise only, see decide)."""
    status, popup, reason = payload["status"], payload["popup_kind"], payload["reason"]
    return [Change(cid, status, popup, reason, id_masked=masked) for cid, masked in exposed]
