"""Check-ins: many scans recorded in one transaction (group commit), with the 60 s rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from models.crypto import decrypt_id
from models.errors import DomainError, LogbookUnavailable, UnknownCode, ValidationFailed
from models.idnumber import MINOR_AGE
from models.masking import mask_id_number, mask_name
from models.status import VISITOR_STATUS, is_abnormal
from models.stays import end_stays_by_arrivals, open_stays_statement
from models.tables import Checkin, Citizen, Logbook, Venue, Visitor, bind_at
from models.timeutil import BEIJING, iso, parse_iso

DEDUP_SECONDS = 60


@dataclass(frozen=True)
class CheckinRequest:
    """A scan (code set) or a proxy check-in by a registrar (logbook_id set). Who: a citizen,
    or (a proxy check-in only) an unregistered visitor (`visitor_id`, citizen_id None)."""

    citizen_id: int | None
    code: str | None = None
    logbook_id: int | None = None
    via: str = "scan"
    helper_id: int | None = None
    at: datetime | None = None  # a scan queued on an offline phone: when it was scanned
    limit: int = 0  # scans a minute this citizen may make, counted by the writer (0: none)
    visitor_id: int | None = None


SCANNED_AT_MAX = timedelta(hours=2)  # how far back a queued scan's own time is believed
SCANNED_AT_SKEW = timedelta(minutes=1)  # a phone's clock a little ahead of ours


def scanned_at(value: object, now: datetime) -> datetime | None:
    """The scan time a phone sends with a scan it queued while offline (None when absent).
    At most SCANNED_AT_MAX in the past; a time slightly ahead (clock skew) counts as now."""
    if value is None:
        return None
    at = parse_iso(value, "scanned_at")
    if at > now + SCANNED_AT_SKEW:
        raise ValidationFailed("scanned_at 晚于当前时间 / scanned_at is in the future")
    if at < now - SCANNED_AT_MAX:
        raise ValidationFailed("离线登记已超过2小时，请重新扫码 / a scan queued more than 2 "
                               "hours ago is no longer accepted: scan again")
    return min(at, now)


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
        "left_at": iso(row.left_at) if row.left_at is not None else None,
    }


_lb = Logbook.__table__
_v = Venue.__table__
_c = Citizen.__table__
_vi = Visitor.__table__
_ck = Checkin.__table__

_BY_IDS = select(_ck).where(_ck.c.id.in_(bindparam("ids", expanding=True)))
_CHUNK = 500  # rows a statement: 12 parameters a row stay well inside the drivers' limits
_INSERT_COLUMNS = ("venue_id", "logbook_id", "citizen_id", "visitor_id", "helper_id", "via",
                   "status", "popup_kind", "alert", "minor", "name_masked", "id_masked", "at")
_LOGBOOKS = (f"SELECT lb.id, lb.venue_id, lb.label, lb.state, lb.reason, lb.code, v.name "
             f"FROM {_lb.name} lb JOIN {_v.name} v ON v.id = lb.venue_id WHERE lb.")
# The statements of a batch, as SQL text with `{rows}` placeholders for the batch's values.
# They go straight to the driver (exec_driver_sql): SQLAlchemy's per-execution work (cache
# key, expanding IN, result processing) was most of a small batch's cost, and none of these
# columns needs a type conversion except `at`, which bind_at converts once.
_TEMPLATES = {
    "logbooks_by_code": _LOGBOOKS + "code IN ({rows})",
    "logbooks_by_id": _LOGBOOKS + "id IN ({rows})",
    # The ID number is stored encrypted (models/crypto.py): decrypted here, ~1 µs a row.
    "citizens": f"SELECT id, name, {_c.c.id_number.name}, status, popup_kind FROM {_c.name} "
                "WHERE id IN ({rows})",
    "visitors": f"SELECT id, name, {_vi.c.id_number.name} FROM {_vi.name} WHERE id IN ({{rows}})",
    # The batch's own (citizen, logbook) pairs joined to the index on (citizen_id, logbook_id,
    # at): one index seek a pair. (A row-value IN would be neater, but SQLite then scans
    # every check-in of the last minute.)
    "recent": f"SELECT ck.id, ck.citizen_id, ck.logbook_id FROM (VALUES {{rows}}) AS p "
              f"JOIN {_ck.name} ck ON ck.citizen_id = p.column1 AND ck.logbook_id = p.column2 "
              "AND ck.at >= {mark}",
    # Unregistered visitors' (proxy) visits: rare, on the partial index ix_checkin_visitor_id.
    "recent_visitors": f"SELECT ck.id FROM (VALUES {{rows}}) AS p JOIN {_ck.name} ck "
                       "ON ck.visitor_id = p.column1 AND ck.logbook_id = p.column2 "
                       "AND ck.at >= {mark}",
    "insert": f"INSERT INTO {_ck.name} ({', '.join(_INSERT_COLUMNS)}) VALUES {{rows}} "
              "RETURNING id, citizen_id, visitor_id, logbook_id",
}
# Parameters a row (else 1).
_WIDTH = {"recent": 2, "recent_visitors": 2, "insert": len(_INSERT_COLUMNS)}
_sql: dict[tuple[str, str, int], str] = {}

# PostgreSQL: the same statements taking whole arrays, one parameter a column, so that the
# text is the same whatever the batch's size. psycopg then parses each once and prepares it
# after a few uses (the server parses and plans it once per connection). With a VALUES list
# of placeholders every batch size was a statement of its own: planned every time (the
# check-in table is partitioned: ~0.3 ms a statement), and psycopg's own parsing of 13
# placeholders a row took a third of the writer's CPU at 128 rows a batch (bench/writer.py).
_INSERT_TYPES = ("int", "int", "int", "int", "int", "text", "text", "text", "bool", "bool",
                 "text", "text", "timestamptz")
_PG_TEMPLATES = {
    "logbooks_by_code": _LOGBOOKS + "code = ANY(%s::text[])",
    "logbooks_by_id": _LOGBOOKS + "id = ANY(%s::int[])",
    "citizens": f"SELECT id, name, {_c.c.id_number.name}, status, popup_kind FROM {_c.name} "
                "WHERE id = ANY(%s::int[])",
    "visitors": f"SELECT id, name, {_vi.c.id_number.name} FROM {_vi.name} "
                "WHERE id = ANY(%s::int[])",
    "recent": f"SELECT ck.id, ck.citizen_id, ck.logbook_id FROM unnest(%s::int[], %s::int[]) "
              f"AS p (who, logbook) JOIN {_ck.name} ck ON ck.citizen_id = p.who "
              "AND ck.logbook_id = p.logbook AND ck.at >= %s",
    "recent_visitors": f"SELECT ck.id FROM unnest(%s::int[], %s::int[]) AS p (who, logbook) "
                       f"JOIN {_ck.name} ck ON ck.visitor_id = p.who "
                       "AND ck.logbook_id = p.logbook AND ck.at >= %s",
    "insert": f"INSERT INTO {_ck.name} ({', '.join(_INSERT_COLUMNS)}) SELECT * FROM unnest("
              + ", ".join(f"%s::{t}[]" for t in _INSERT_TYPES)
              + ") RETURNING id, citizen_id, visitor_id, logbook_id",
}


# PostgreSQL, for the rest of the batch's transaction (sent with its look-ups): every
# statement of a batch finds its rows by an index probe, and must, whatever the statistics
# say. A day's partition starts empty and without statistics; a plan made then, and kept (the
# statements are prepared), read the growing partition once for every citizen of the batch (a
# sequential scan, or the open-stays index by `at` alone): 20 ms a batch after a few seconds,
# and growing. So no sequential scans, and a plan made for each execution from the
# partitions' current size (which also prunes the partitions outside the batch's times while
# planning); the statements are still parsed once.
_PG_BATCH_PLANS = ("SET LOCAL enable_seqscan = off",
                   "SET LOCAL plan_cache_mode = force_custom_plan")


def _pg_params(kind: str, rows: list, extra: tuple = ()) -> tuple:
    """A _PG_TEMPLATES statement's parameters: one list a column."""
    width = _WIDTH.get(kind, 1)
    if width == 1:
        return (list(rows), *extra)
    return (*(list(column) for column in zip(*rows, strict=True)), *extra)


def _statement(dialect, kind: str, rows: int) -> str:
    """The SQL text of a `rows`-row statement (cached per dialect, kind and size)."""
    key = (dialect.name, kind, rows)
    sql = _sql.get(key)
    if sql is None:
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        width = _WIDTH.get(kind, 1)
        one = mark if width == 1 else "(" + ", ".join([mark] * width) + ")"
        sql = _sql[key] = _TEMPLATES[kind].format(rows=", ".join([one] * rows), mark=mark)
    return sql


def _fetch(conn: Connection, kind: str, rows: list, *extra) -> list[tuple]:
    """Run a statement of `kind` for `rows` (chunked) on the DBAPI cursor; tuples back.

    On the connection's own DBAPI connection, so inside the caller's transaction (begun
    here if it was not yet: SQLAlchemy only commits a transaction it knows of).
    """
    if not rows:
        return []
    if not conn.in_transaction():
        conn.begin()
    cursor = conn.connection.cursor()
    if conn.dialect.name == "postgresql":  # whole arrays: one statement, no chunks
        try:
            cursor.execute(_PG_TEMPLATES[kind], _pg_params(kind, rows, extra))
            return cursor.fetchall()
        finally:
            cursor.close()
    out: list[tuple] = []
    width = _WIDTH.get(kind, 1)
    try:
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start:start + _CHUNK]
            params = chunk if width == 1 else [x for row in chunk for x in row]
            cursor.execute(_statement(conn.dialect, kind, len(chunk)), (*params, *extra))
            out += cursor.fetchall()
    finally:
        cursor.close()
    return out


def newest_checkin_id(conn: Connection) -> int:
    """The highest check-in id committed so far (0 for none), on the DBAPI cursor."""
    if not conn.in_transaction():
        conn.begin()
    cursor = conn.connection.cursor()
    try:
        cursor.execute(f"SELECT max(id) FROM {_ck.name}")
        row = cursor.fetchone()
    finally:
        cursor.close()
    return row[0] or 0


def _fetch_together(conn: Connection, *queries: tuple[str, list],
                    settings: tuple[str, ...] = ()) -> list[list[tuple]]:
    """Independent statements of `_fetch`'s kinds (one parameter a row): on PostgreSQL sent
    in one round trip (psycopg's pipeline mode) after `settings` (statements without
    results, such as `SET LOCAL`), elsewhere one after the other (no settings there)."""
    if conn.dialect.name != "postgresql":
        return [_fetch(conn, kind, rows) for kind, rows in queries]
    if not conn.in_transaction():
        conn.begin()
    raw = conn.connection.dbapi_connection
    cursors = [raw.cursor() if rows else None for _, rows in queries]
    try:
        with raw.pipeline():
            for setting in settings:
                raw.execute(setting)
            for (kind, rows), cursor in zip(queries, cursors, strict=True):
                if cursor is not None:
                    cursor.execute(_PG_TEMPLATES[kind], _pg_params(kind, rows))
        return [cursor.fetchall() if cursor is not None else [] for cursor in cursors]
    finally:
        for cursor in cursors:
            if cursor is not None:
                cursor.close()


def newest_ids_by_venue(conn: Connection, venue_ids: list[int]) -> dict[int, int]:
    """The highest check-in id committed so far at each of these venues (0 for none), in one
    statement on the DBAPI cursor (the index on (venue_id, id): one probe a venue, and on
    PostgreSQL one a venue and partition)."""
    if not venue_ids:
        return {}
    if not conn.in_transaction():
        conn.begin()
    cursor = conn.connection.cursor()
    try:
        cursor.execute(*newest_ids_statement(conn.dialect.name, venue_ids))
        return newest_ids(cursor.fetchall())
    finally:
        cursor.close()


def newest_ids_statement(dialect: str, venue_ids: list[int]) -> tuple[str, tuple]:
    """newest_ids_by_venue's statement and parameters (for a caller that pipelines it)."""
    if dialect == "postgresql":
        return (f"SELECT v, (SELECT max(id) FROM {_ck.name} WHERE venue_id = v) "
                "FROM unnest(%s::int[]) AS v", (list(venue_ids),))
    return (f"SELECT v.column1, (SELECT max(id) FROM {_ck.name} WHERE venue_id = v.column1) "
            f"FROM (VALUES {', '.join(['(?)'] * len(venue_ids))}) AS v", tuple(venue_ids))


def newest_ids(rows) -> dict[int, int]:
    return {venue: newest or 0 for venue, newest in rows}


class _Logbook(NamedTuple):
    id: int
    venue_id: int
    label: str
    state: str
    reason: str | None
    code: str
    venue_name: str


# A request's key: (citizen id, visitor id, logbook id), 0 for the absent one (ids start at
# 1). It names the check-in the 60 s rule matches, and a new row inside its batch.
_Key = tuple[int, int, int]


def _key(row) -> _Key:
    """A check-in row's key: its citizen's once it has one (a visitor's visit linked to the
    citizen who registered later counts as theirs), else its visitor's."""
    if row.citizen_id:
        return (row.citizen_id, 0, row.logbook_id)
    return (0, row.visitor_id, row.logbook_id)


def _recent(conn: Connection, keys: list[_Key], since: datetime) -> list:
    """The check-ins since `since` of these keys' (citizen or visitor, logbook), full rows."""
    mark = bind_at(conn, since)
    ids = [row[0] for row in _fetch(conn, "recent", [(c, lb) for c, v, lb in keys if c], mark)]
    ids += [row[0] for row in _fetch(conn, "recent_visitors",
                                     [(v, lb) for c, v, lb in keys if not c], mark)]
    return list(conn.execute(_BY_IDS, {"ids": ids})) if ids else []


def _insert(conn: Connection, rows: list[dict], at: datetime,
            arrivals: list[tuple[int, datetime]]) -> tuple[dict[_Key, int], list | None]:
    """Insert the rows (INSERT … RETURNING); returns key → new id, and on PostgreSQL the open
    stays of the arrivals' citizens, read after the insert in the same round trip (else None:
    end_stays_by_arrivals reads them). RETURNING order is not guaranteed, so rows are matched
    back by their key, which is unique inside a batch. A row's own "at" (a queued offline
    scan) overrides the batch's time."""
    at_value = bind_at(conn, at)
    values = [(r["venue_id"], r["logbook_id"], r["citizen_id"], r["visitor_id"], r["helper_id"],
               r["via"], r["status"], r["popup_kind"], r["alert"], r["minor"], r["name_masked"],
               r["id_masked"], at_value if r["at"] is None else bind_at(conn, r["at"]))
              for r in rows]
    stays = None
    if conn.dialect.name == "sqlite":
        inserted = _insert_sqlite(conn, values)
    elif not arrivals:
        inserted = _fetch(conn, "insert", values)
    else:
        inserted, stays = _fetch_after(conn, ("insert", values), open_stays_statement(arrivals))
    return {(citizen_id or 0, 0 if citizen_id else visitor_id, logbook_id): checkin_id
            for checkin_id, citizen_id, visitor_id, logbook_id in inserted}, stays


def _fetch_after(conn: Connection, first: tuple[str, list], then: tuple[str, tuple]
                 ) -> tuple[list[tuple], list[tuple]]:
    """PostgreSQL: a _PG_TEMPLATES statement, then another statement that reads what the
    first wrote, in one round trip (pipeline mode runs them in order, in the transaction)."""
    if not conn.in_transaction():
        conn.begin()
    raw = conn.connection.dbapi_connection
    one, two = raw.cursor(), raw.cursor()
    try:
        with raw.pipeline():
            one.execute(_PG_TEMPLATES[first[0]], _pg_params(first[0], first[1]))
            two.execute(*then)
        return one.fetchall(), two.fetchall()
    finally:
        one.close()
        two.close()


_SQLITE_INSERT = (f"INSERT INTO {_ck.name} ({', '.join(_INSERT_COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(_INSERT_COLUMNS))})")
_SQLITE_SINCE = f"SELECT id, citizen_id, visitor_id, logbook_id FROM {_ck.name} WHERE id > ?"


def _insert_sqlite(conn: Connection, values: list[tuple]) -> list[tuple]:
    """SQLite: one prepared single-row INSERT run for every row (executemany), then the new
    rows read back by id. A multi-row VALUES … RETURNING took 3.3× as long for twenty rows
    (800 against 240 µs, and its commit 530 against 415 µs; /tmp micro-benchmark on a copy of
    a benchmark database). The read-back is exact: the insert holds SQLite's write lock, and
    `newest` is read in the same transaction, so every id above it is one of these rows."""
    newest = newest_checkin_id(conn)  # begins the transaction if it was not yet
    cursor = conn.connection.cursor()
    try:
        cursor.executemany(_SQLITE_INSERT, values)
        rows = cursor.execute(_SQLITE_SINCE, (newest,)).fetchall()
    finally:
        cursor.close()
    if len(rows) != len(values):  # pragma: no cover - another writer inside our lock
        raise RuntimeError(f"inserted {len(values)} check-ins, read back {len(rows)}")
    return rows


def record_checkins(
    conn: Connection, requests: list[CheckinRequest], *, now: datetime,
    refused: Callable[[], dict[int, DomainError]] | None = None,
    before_insert: Callable[[list[int]], object] | None = None,
) -> tuple[list[CheckinResult | DomainError], list[dict], list[dict]]:
    """Record a batch of check-ins in the caller's transaction (the caller commits).

    Returns one result or domain error per request, in order, the feed events of the new
    check-ins in id order, and the checkout events of the earlier stays they ended
    (models/stays.py), both to publish after the commit. Six statements per batch, whatever
    its size: logbooks, citizens and visitors (on PostgreSQL one round trip), the 60 s
    look-back, the insert, the citizens' open stays and the update that ends them. `refused`,
    called
    once the look-ups are done, names the requests (by index) that get an error instead of
    being recorded: the rate limit's verdicts, whose round trip overlaps the look-ups.
    `before_insert` is called with the ids of the venues the batch may write to (sorted)
    before the 60-s look-back and the insert: the check-in writer takes those venues' feed
    order there (ingest/order.py).
    """
    codes = sorted({r.code for r in requests if r.code})
    lb_ids = sorted({r.logbook_id for r in requests if r.logbook_id is not None})
    found_by_code, found_by_id, found_citizens, found_visitors = _fetch_together(
        conn, ("logbooks_by_code", codes), ("logbooks_by_id", lb_ids),
        ("citizens", sorted({r.citizen_id for r in requests if r.citizen_id is not None})),
        ("visitors", sorted({r.visitor_id for r in requests
                             if r.citizen_id is None and r.visitor_id is not None})),
        settings=_PG_BATCH_PLANS)
    by_code = {r.code: r for r in map(_Logbook._make, found_by_code)}
    by_id = {r.id: r for r in map(_Logbook._make, found_by_id)}
    by_id.update({r.id: r for r in by_code.values()})
    citizens = {row[0]: row for row in found_citizens}
    visitors = {row[0]: row for row in found_visitors}

    # Which logbook and person each request names, or the error it gets.
    resolved: list[_Key | DomainError] = []
    for req in requests:
        lb = by_code.get(req.code) if req.code else by_id.get(req.logbook_id)
        if lb is None:
            resolved.append(UnknownCode("无效的登记码 / unknown logbook code"))
        elif lb.state != "active":
            resolved.append(LogbookUnavailable(lb.state, lb.reason))
        elif req.citizen_id in citizens:
            resolved.append((req.citizen_id, 0, lb.id))
        elif req.citizen_id is None and req.visitor_id in visitors:
            resolved.append((0, req.visitor_id, lb.id))
        else:
            resolved.append(ValidationFailed("未知的居民 / unknown citizen"))
    if refused is not None:
        for i, refusal in refused().items():
            resolved[i] = refusal

    keys = sorted({key for key in resolved if isinstance(key, tuple)})
    if keys and before_insert is not None:
        before_insert(sorted({by_id[key[2]].venue_id for key in keys}))
    recent: dict[_Key, dict] = {}  # key → the public check-in it resolves to
    if keys:
        since = now - timedelta(seconds=DEDUP_SECONDS)
        latest: dict[_Key, object] = {}
        for row in _recent(conn, keys, since):
            key = _key(row)
            if key not in latest or row.id > latest[key].id:
                latest[key] = row
        for key, row in latest.items():
            recent[key] = public_checkin(row, by_id[row.logbook_id].label)

    today = now.astimezone(BEIJING).date()
    at_iso = iso(now)
    new_rows: dict[_Key, dict] = {}
    for key, req in zip(resolved, requests, strict=True):
        if not isinstance(key, tuple) or key in recent or key in new_rows:
            continue
        if key[0]:
            _, name, id_number_enc, status, popup_kind = citizens[key[0]]
        else:  # an unregistered visitor: no status to show, the registrar checks by hand
            _, name, id_number_enc = visitors[key[1]]
            status, popup_kind = VISITOR_STATUS, None
        id_number = decrypt_id(id_number_enc)
        lb = by_id[key[2]]
        new_rows[key] = {
            "venue_id": lb.venue_id,
            "logbook_id": lb.id,
            "citizen_id": key[0] or None,
            "visitor_id": key[1] or None,
            "helper_id": req.helper_id,
            "via": req.via,
            "status": status,
            "popup_kind": popup_kind,
            "alert": is_abnormal(status),
            "minor": is_minor_id(id_number, today),
            "name_masked": mask_name(name),
            "id_masked": mask_id_number(id_number),
            "at": req.at,
        }

    events: list[dict] = []
    checkouts: list[dict] = []
    if new_rows:
        # Citizens' arrivals end their earlier stays (a visitor has no account).
        arrivals = [(key[0], now if row["at"] is None else row["at"])
                    for key, row in new_rows.items() if key[0]]
        ids, stays = _insert(conn, list(new_rows.values()), now, arrivals)
        checkouts = end_stays_by_arrivals(conn, arrivals, stays)
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
                "at": at_iso if row["at"] is None else iso(row["at"]),
                "left_at": None,
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
        results.append(CheckinResult(recent[key], by_id[key[2]].venue_name, created=created))
    return results, events, checkouts


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



