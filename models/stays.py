"""Stays: a check-in is an arrival (`at`) and, once the stay ended, a departure (`left_at`).

A stay ends in one of four ways, whichever comes first:
- the citizen checks out (离场: POST /api/me/checkout),
- a registrar of the venue checks the visitor out,
- the citizen checks in anywhere else (the new arrival ends the earlier stay at its own time:
  `end_stays_by_arrivals`, called by record_checkins inside the check-in batch),
- nobody ends it: it ends `max_stay_minutes` (the venue's; default by category) after arrival.

The last rule holds without any writer: a stay is open while `left_at IS NULL` and
`at > now - max_stay`, which is what occupancy and check-out read. The scheduled job
(`close_expired_stays`, every minute) writes `left_at = at + max_stay` into such rows and
announces the check-outs, so listings, feeds and exports show the departure too.
Invariant: `left_at <= at + max_stay` always; an exposure relies on it (models/health.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.engine import Connection

from models.errors import NotFound, ValidationFailed
from models.tables import Checkin, Logbook, Venue, bind_at
from models.timeutil import iso

# Minutes a stay lasts when nobody ends it, by venue category (the console's categories);
# a venue may set its own at creation. A visit to a shop or a restaurant is an hour or two,
# a working day in an office or a school ten hours, a night in a hotel twelve.
MAX_STAY_BY_CATEGORY = {
    "office": 600, "shop": 120, "mall": 180, "restaurant": 120, "medical": 240,
    "school": 600, "hotel": 720, "transport": 60, "culture": 240, "residential": 720,
    "other": 240,
}
DEFAULT_MAX_STAY = 240
MAX_STAY_LIMIT = 24 * 60  # no stay is open longer than a day
# Open stays are looked for among arrivals this recent (bounds every query to a day or two of
# check-ins: on PostgreSQL, one or two daily partitions).
LOOKBACK = timedelta(minutes=MAX_STAY_LIMIT)
EXPIRE_CHUNK = 2000  # stays closed a transaction by the expiry job
EXPIRE_LOOKBACK = timedelta(days=35)  # past any retention: the job finds every stay left open

_ck, _v, _lb = Checkin.__table__, Venue.__table__, Logbook.__table__


def default_max_stay(category: str) -> int:
    return MAX_STAY_BY_CATEGORY.get(category, DEFAULT_MAX_STAY)


def parse_max_stay(value: object, category: str) -> int:
    """A venue's `max_stay_minutes` from its creation request (absent: the category's)."""
    if value is None:
        return default_max_stay(category)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_STAY_LIMIT:
        raise ValidationFailed(f"max_stay_minutes 须为1–{MAX_STAY_LIMIT}的整数 / "
                               f"max_stay_minutes must be an integer from 1 to {MAX_STAY_LIMIT}")
    return value


def checkout_event(checkin_id: int, venue_id: int, left_at: datetime) -> dict:
    """The venue feed's `checkout` event (not numbered: `id` is the check-in's)."""
    return {"type": "checkout", "id": checkin_id, "venue_id": venue_id, "left_at": iso(left_at)}


def occupancy_event(venue_id: int, inside: int, capacity: int | None) -> dict:
    return {"type": "occupancy", "venue_id": venue_id, "inside": inside, "capacity": capacity,
            "full": capacity is not None and inside >= capacity}


@dataclass(frozen=True)
class Stay:
    id: int
    venue_id: int
    citizen_id: int
    at: datetime
    max_stay: int

    @property
    def due(self) -> datetime:
        """When the stay ends if nobody ends it."""
        return self.at + timedelta(minutes=self.max_stay)


_STAY_COLUMNS = (_ck.c.id, _ck.c.venue_id, _ck.c.citizen_id, _ck.c.at, _v.c.max_stay_minutes)


# PostgreSQL: the batch's citizens' open stays, one index probe a citizen on
# ix_checkin_citizen_open, whatever the statistics say: the lateral subquery names the citizen,
# and OFFSET 0 keeps the planner from flattening it into a join. (On a day's partition still
# without statistics, both an `= ANY` list and the flattened join were planned as a read of
# every open stay of the day: 15 ms against 1 ms for 64 citizens and 10,000 open stays.) One
# text for any number of citizens: parsed once (planned per batch: checkins._PG_BATCH_PLANS).
_PG_OPEN_STAYS = (f"SELECT s.id, s.venue_id, s.citizen_id, s.at, v.max_stay_minutes "
                  f"FROM unnest(%s::int[]) AS p (who) CROSS JOIN LATERAL "
                  f"(SELECT id, venue_id, citizen_id, at FROM {_ck.name} "
                  f"WHERE citizen_id = p.who AND left_at IS NULL AND at >= %s AND at <= %s "
                  f"OFFSET 0) AS s "
                  f"JOIN {_v.name} v ON v.id = s.venue_id")


# SQLite: the check-in batch's two stays statements as text on the driver's cursor, `at`
# compared as the stored string. Through SQLAlchemy's compiler and type processing they were
# a third of the writer's CPU a batch (bench.writer on SQLite, py-spy).
_SQLITE_OPEN_STAYS = (f"SELECT s.id, s.venue_id, s.citizen_id, s.at, v.max_stay_minutes "
                      f"FROM {_ck.name} s JOIN {_v.name} v ON v.id = s.venue_id "
                      f"WHERE s.left_at IS NULL AND s.at >= ? AND s.citizen_id IN ")
_SQLITE_END = (f"UPDATE {_ck.name} SET left_at = ? "
               f"WHERE id = ? AND at = ? AND left_at IS NULL")


def _sqlite_stays(conn: Connection, citizens: list[int], since: datetime
                  ) -> tuple[list[Stay], dict[int, str]]:
    """SQLite: the open stays of these citizens that began since `since`, and each stay's
    `at` as stored (id -> text) for _close's WHERE."""
    cursor = conn.connection.cursor()
    try:
        rows = cursor.execute(_SQLITE_OPEN_STAYS + f"({','.join('?' * len(citizens))})",
                              (bind_at(conn, since), *citizens)).fetchall()
    finally:
        cursor.close()
    stored = {row[0]: row[3] for row in rows}
    return [Stay(sid, venue, citizen, datetime.fromisoformat(at).replace(tzinfo=UTC), limit)
            for sid, venue, citizen, at, limit in rows], stored


def _stays(conn: Connection, *where) -> list[Stay]:
    rows = conn.execute(select(*_STAY_COLUMNS).join(_v, _v.c.id == _ck.c.venue_id)
                        .where(_ck.c.left_at.is_(None), *where))
    return [Stay(*row) for row in rows]


_END = (update(_ck).where(_ck.c.id == bindparam("sid"), _ck.c.at == bindparam("sat"),
                         _ck.c.left_at.is_(None))
        .values(left_at=bindparam("left")))


def _close(conn: Connection, ended: list[tuple[Stay, datetime]], *, exact: bool = False,
           stored: dict[int, str] | None = None) -> list[dict]:
    """Write each stay's departure unless someone ended it meanwhile (`at` in the WHERE lets
    PostgreSQL go straight to the stay's partition); the checkout events. `exact`: one
    statement a stay, and events only for those this call ended; otherwise one executemany
    (the check-in batch, where a duplicate checkout event does no harm). `stored`: SQLite,
    each stay's `at` as read (_sqlite_stays): one executemany on the driver's cursor."""
    if not ended:
        return []
    if stored is not None:
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(_SQLITE_END, [(bind_at(conn, left), stay.id, stored[stay.id])
                                             for stay, left in ended])
        finally:
            cursor.close()
        return [checkout_event(stay.id, stay.venue_id, left) for stay, left in ended]
    params = [{"sid": stay.id, "sat": stay.at, "left": left} for stay, left in ended]
    if not exact:
        conn.execute(_END, params)
        return [checkout_event(stay.id, stay.venue_id, left) for stay, left in ended]
    return [checkout_event(stay.id, stay.venue_id, left)
            for (stay, left), p in zip(ended, params, strict=True)
            if conn.execute(_END, p).rowcount]


def open_stays_statement(arrivals: list[tuple[int, datetime]]) -> tuple[str, tuple]:
    """PostgreSQL: the statement reading the open stays of these arrivals' citizens ((citizen,
    at) pairs), for a caller that sends it in the same round trip as the insert that precedes
    it (models/checkins.py): `end_stays_by_arrivals(conn, arrivals, stays=rows)`."""
    return _PG_OPEN_STAYS, (sorted({citizen_id for citizen_id, _ in arrivals}),
                            min(at for _, at in arrivals) - LOOKBACK,
                            max(at for _, at in arrivals) + LOOKBACK)


def end_stays_by_arrivals(conn: Connection, arrivals: list[tuple[int, datetime]],
                          stays: list[tuple] | None = None) -> list[dict]:
    """New check-ins (citizen, at), already inserted, end the same citizens' earlier open stays
    at their own time (a queued offline scan older than a stay that began since is itself
    ended when that stay began). Runs in the check-in batch's transaction; returns the
    checkout events to publish after the commit. `stays`: on PostgreSQL the rows of
    open_stays_statement, which the caller read with its insert; on SQLite None (read here)."""
    if not arrivals:
        return []
    stored = None
    if stays is None:  # SQLite: read here
        citizens = sorted({citizen_id for citizen_id, _ in arrivals})
        oldest = min(at for _, at in arrivals)
        stays, stored = _sqlite_stays(conn, citizens, oldest - LOOKBACK)
    else:
        stays = [Stay(*row) for row in stays]
    stays_of: dict[int, list[Stay]] = defaultdict(list)
    for stay in stays:
        stays_of[stay.citizen_id].append(stay)
    ended: list[tuple[Stay, datetime]] = []
    for own in stays_of.values():
        own.sort(key=lambda s: (s.at, s.id))
        # Each stay ends where the next one (by arrival time) begins; the newest stays open.
        for stay, following in zip(own, own[1:], strict=False):
            ended.append((stay, min(following.at, stay.due)))
    return _close(conn, ended, stored=stored)


def overlapping(conn: Connection, venue_id: int, start: datetime, until: datetime) -> tuple:
    """WHERE conditions on `checkin` for the stays at the venue that overlap [start, until)
    (an exposure's window): arrived before `until`, and left after `start` or arrived inside
    (however short the stay). An open stay lasts until the venue's limit after arrival and no
    stay lasts longer (the invariant above), so arrivals older than `start` - limit are out."""
    max_stay = conn.execute(select(_v.c.max_stay_minutes).where(_v.c.id == venue_id)).scalar()
    if max_stay is None:  # no such venue: nothing matches
        return (_ck.c.id.is_(None),)
    return (_ck.c.venue_id == venue_id, _ck.c.at < until,
            _ck.c.at > start - timedelta(minutes=max_stay),
            or_(_ck.c.left_at.is_(None), _ck.c.left_at > start, _ck.c.at >= start))


def _open_stay_query(citizen_id: int, now: datetime):
    return (_ck.c.citizen_id == citizen_id, _ck.c.at > now - LOOKBACK, _ck.c.at <= now)


def checkout_citizen(conn: Connection, *, citizen_id: int, checkin_id: object, now: datetime
                     ) -> tuple[dict, list[dict]]:
    """The citizen leaves: their open stay (or the one named) ends now. Returns the answer
    ({checkin_id, left_at}) and the events to publish after the commit. NotFound when no stay
    is open (or the named check-in is not theirs). A stay that ended already answers with its
    departure (a second tap changes nothing)."""
    if checkin_id is not None and (not isinstance(checkin_id, int) or isinstance(checkin_id, bool)):
        raise ValidationFailed("checkin_id 须为整数 / checkin_id must be an integer")
    if checkin_id is not None:
        row = conn.execute(select(*_STAY_COLUMNS, _ck.c.left_at)
                           .join(_v, _v.c.id == _ck.c.venue_id)
                           .where(_ck.c.id == checkin_id, _ck.c.citizen_id == citizen_id)).first()
        if row is None:
            raise NotFound("没有这条登记记录 / no such check-in of yours")
        if row.left_at is not None:
            return {"checkin_id": row.id, "left_at": iso(row.left_at)}, []
        stay = Stay(*row[:5])
    else:
        stays = [s for s in _stays(conn, *_open_stay_query(citizen_id, now)) if s.due > now]
        if not stays:
            raise NotFound("当前没有未离场的登记 / no stay is open")
        stay = max(stays, key=lambda s: (s.at, s.id))
    return _end(conn, stay, now)


def current_stay(conn: Connection, *, citizen_id: int, now: datetime) -> dict:
    """GET /api/me/stay: the citizen's open stay and how full its venue is. NotFound when no
    stay is open."""
    stays = [s for s in _stays(conn, *_open_stay_query(citizen_id, now)) if s.due > now]
    if not stays:
        raise NotFound("当前没有未离场的登记 / no stay is open")
    stay = max(stays, key=lambda s: (s.at, s.id))
    row = conn.execute(select(_v.c.name, _v.c.capacity, _lb.c.id, _lb.c.label, _ck.c.status,
                              _ck.c.popup_kind, _ck.c.via)
                       .join(_ck, _ck.c.venue_id == _v.c.id)
                       .join(_lb, _lb.c.id == _ck.c.logbook_id)
                       .where(_ck.c.id == stay.id, _ck.c.at == stay.at)).one()
    inside = occupancy(conn, [stay.venue_id], now=now).get(stay.venue_id, 0)
    return {"checkin_id": stay.id, "at": iso(stay.at), "left_at": None, "until": iso(stay.due),
            "status": row.status, "popup_kind": row.popup_kind, "via": row.via,
            "venue": {"id": stay.venue_id, "name": row.name, "occupancy": inside,
                      "capacity": row.capacity,
                      "full": row.capacity is not None and inside >= row.capacity},
            "logbook": {"id": row.id, "label": row.label}}


def checkout_visitor(conn: Connection, *, logbook_id: int, checkin_id: int, now: datetime
                     ) -> tuple[dict, list[dict]]:
    """A registrar checks a visitor out (the caller has checked they are one of the venue's):
    the check-in must belong to the logbook."""
    row = conn.execute(select(*_STAY_COLUMNS, _ck.c.left_at).join(_v, _v.c.id == _ck.c.venue_id)
                       .where(_ck.c.id == checkin_id, _ck.c.logbook_id == logbook_id)).first()
    if row is None:
        raise NotFound("该登记簿没有这条登记 / no such check-in in this logbook")
    if row.left_at is not None:
        return {"checkin_id": row.id, "left_at": iso(row.left_at)}, []
    return _end(conn, Stay(*row[:5]), now)


def _end(conn: Connection, stay: Stay, now: datetime) -> tuple[dict, list[dict]]:
    left = min(max(now, stay.at), stay.due)  # never past the stay's own limit
    events = _close(conn, [(stay, left)], exact=True)
    if not events:  # ended by someone else just now: answer with that departure
        left = conn.execute(select(_ck.c.left_at).where(_ck.c.id == stay.id,
                                                        _ck.c.at == stay.at)).scalar_one()
    return {"checkin_id": stay.id, "left_at": iso(left)}, events


def close_expired_stays(conn_factory, *, now: datetime, chunk: int = EXPIRE_CHUNK) -> list[dict]:
    """Write `left_at = at + max_stay` into every stay past its limit, a chunk a transaction
    (`conn_factory()`: a context manager giving a Connection in a transaction, e.g.
    engine.begin). Returns the checkout events. Idempotent."""
    events: list[dict] = []
    while True:
        with conn_factory() as conn:
            stays = _expired(conn, now, chunk)
            events += _close(conn, [(s, s.due) for s in stays], exact=True)
        if len(stays) < chunk:
            return events


def _expired(conn: Connection, now: datetime, chunk: int) -> list[Stay]:
    """Open stays past their venue's limit: per distinct limit, arrivals before now - limit
    (the partial index on open stays serves it)."""
    limits = sorted(conn.execute(select(_v.c.max_stay_minutes).distinct()).scalars())
    found: list[Stay] = []
    for minutes in limits:
        found += _stays(conn, _v.c.max_stay_minutes == minutes,
                        _ck.c.at <= now - timedelta(minutes=minutes),
                        _ck.c.at > now - EXPIRE_LOOKBACK)
        if len(found) >= chunk:
            break
    return found[:chunk]


def occupancy(conn: Connection, venue_ids: list[int], *, now: datetime) -> dict[int, int]:
    """Open stays per venue (venues with none are absent)."""
    if not venue_ids:
        return {}
    rows = conn.execute(
        select(_ck.c.venue_id, func.count()).join(_v, _v.c.id == _ck.c.venue_id)
        .where(_ck.c.venue_id.in_(venue_ids), _ck.c.left_at.is_(None),
               _ck.c.at > now - LOOKBACK, _ck.c.at <= now + timedelta(minutes=1),
               *_within_limit(conn, venue_ids, now))
        .group_by(_ck.c.venue_id))
    return dict(rows.all())


def _within_limit(conn: Connection, venue_ids: list[int], now: datetime) -> tuple:
    """The condition `at > now - max_stay` for these venues, one branch per distinct limit
    (there are a few: the category defaults)."""
    limits = defaultdict(list)
    for venue_id, minutes in conn.execute(select(_v.c.id, _v.c.max_stay_minutes)
                                          .where(_v.c.id.in_(venue_ids))):
        limits[minutes].append(venue_id)
    return (or_(*(and_(_ck.c.venue_id.in_(ids), _ck.c.at > now - timedelta(minutes=minutes))
                  for minutes, ids in limits.items())),) if limits else ()


def all_occupancy(conn: Connection, *, now: datetime) -> dict[int, int]:
    """Open stays per venue, every venue with any (the wallboard)."""
    limits = sorted(conn.execute(select(_v.c.max_stay_minutes).distinct()).scalars())
    out: dict[int, int] = {}
    for minutes in limits:
        rows = conn.execute(
            select(_ck.c.venue_id, func.count()).join(_v, _v.c.id == _ck.c.venue_id)
            .where(_v.c.max_stay_minutes == minutes, _ck.c.left_at.is_(None),
                   _ck.c.at > now - timedelta(minutes=minutes),
                   _ck.c.at <= now + timedelta(minutes=1))
            .group_by(_ck.c.venue_id))
        out.update(dict(rows.all()))
    return out


def my_visits(conn: Connection, *, citizen_id: int, since: datetime, after: int, limit: int
              ) -> list[dict]:
    """GET /api/me/checkins: the citizen's own stays since `since` (the retention limit),
    id > after, oldest first."""
    rows = conn.execute(
        select(_ck.c.id, _ck.c.venue_id, _v.c.name, _ck.c.logbook_id, _lb.c.label, _ck.c.at,
               _ck.c.left_at, _ck.c.via, _ck.c.status)
        .join(_v, _v.c.id == _ck.c.venue_id).join(_lb, _lb.c.id == _ck.c.logbook_id)
        .where(_ck.c.citizen_id == citizen_id, _ck.c.id > after, _ck.c.at >= since)
        .order_by(_ck.c.id).limit(limit))
    return [{"checkin_id": r.id, "venue": {"id": r.venue_id, "name": r.name},
             "logbook": {"id": r.logbook_id, "label": r.label}, "at": iso(r.at),
             "left_at": iso(r.left_at) if r.left_at is not None else None,
             "via": r.via, "status": r.status} for r in rows]
