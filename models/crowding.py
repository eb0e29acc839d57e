"""Crowding across venues, for the control room's wallboard (/ws/wallboard).

Everything comes from range queries on check-in time (`checkin.at` is indexed; on PostgreSQL
the check-in partitions are days of it). The rules, in one place:

- `recent`: a venue's check-ins in the last RECENT_MINUTES (15) minutes (arrivals).
- `occupancy`: the people inside, its open stays (models/stays.py).
- `level` against capacity: occupancy / capacity below 50 % is normal, below 90 % busy, from
  90 % crowded. A venue without a capacity is measured against NOMINAL_CAPACITY (150).
- Advice: one registrar at one QR code checks about SCANS_PER_CODE (8) visitors a minute
  (scan, look at the screen, wave on). A venue whose rate over the last RATE_MINUTES (5)
  needs more codes than it has active gets "post more codes / add registrars, spread the
  queue at one-metre lines"; a crowded venue gets "limit entry". The same advice for one
  venue (`venue_crowding`) goes to its registrars' live feed with its occupancy.

Minutes that are over do not change, so a MinuteCache keeps their counts: each tick re-reads
only the open minute(s) and the partial minutes at the edges of its windows — a minute or two
of rows however busy the hour was. `crowding(conn, now=...)` without a cache reads it all and
gives the same answer (tests hold the two to that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection

from models.stays import all_occupancy, occupancy, occupancy_event
from models.tables import Checkin, Logbook, Venue
from models.timeutil import iso

RECENT_MINUTES = 15
HOUR_MINUTES = 60
BUSY_SHARE = 0.5
CROWDED_SHARE = 0.9
NOMINAL_CAPACITY = 150
RATE_MINUTES = 5
SCANS_PER_CODE = 8.0
TICKER = 20  # abnormal arrivals on the ticker, newest first
# Venues in a message, the most crowded first (districts count them all). The board ranks,
# filters by district and pages through them itself: a city's active venues must all fit.
MAX_VENUES = 1000
MAX_ADVICE = 12
# A minute is final this long after it ends: check-ins are stamped when their batch is
# inserted and committed at once (group commit); 15 s leaves room for a slow commit.
SETTLE = timedelta(seconds=15)
_VENUE_CHUNK = 500
LEVELS = ("normal", "busy", "crowded")

_ck, _v, _lb = Checkin.__table__, Venue.__table__, Logbook.__table__
_ALERTS = func.sum(case((_ck.c.alert, 1), else_=0))
MINUTE = timedelta(minutes=1)


def level(inside: int, capacity: int | None) -> str:
    """normal | busy | crowded: the people inside against the capacity (or the nominal one)."""
    share = inside / (capacity or NOMINAL_CAPACITY)
    if share >= CROWDED_SHARE:
        return "crowded"
    return "busy" if share >= BUSY_SHARE else "normal"


def codes_needed(rate_per_min: float) -> int:
    """QR codes (each with a registrar) a venue needs for this many scans a minute."""
    return max(1, math.ceil(rate_per_min / SCANS_PER_CODE))


def floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


@dataclass
class Minute:
    """The check-ins of one range of time (a clock minute, or part of one)."""

    total: int = 0
    alerts: int = 0
    venues: dict[int, int] = field(default_factory=dict)  # venue id -> check-ins
    abnormal: list[dict] = field(default_factory=list)  # newest first, at most TICKER


@dataclass
class MinuteCache:
    """Closed minutes (start -> Minute) and venue rows, kept between ticks."""

    minutes: dict[datetime, Minute] = field(default_factory=dict)
    venues: dict[int, tuple] = field(default_factory=dict)
    venues_minute: datetime | None = None  # venue rows are re-read once a minute


def _span(conn: Connection, start: datetime, end: datetime, *, abnormal: bool = True
          ) -> Minute:
    """Counts per venue (and the latest abnormal arrivals) of check-ins in [start, end)."""
    out = Minute()
    if end <= start:
        return out
    window = (_ck.c.at >= start) & (_ck.c.at < end)
    for venue_id, count, alerts in conn.execute(
            select(_ck.c.venue_id, func.count(), _ALERTS).where(window)
            .group_by(_ck.c.venue_id)):
        out.venues[venue_id] = count
        out.total += count
        out.alerts += int(alerts or 0)
    if abnormal and out.alerts:
        rows = conn.execute(
            select(_ck.c.id, _ck.c.at, _ck.c.venue_id, _ck.c.name_masked, _ck.c.id_masked,
                   _ck.c.status, _ck.c.popup_kind, _ck.c.minor, _ck.c.via)
            .where(window, _ck.c.alert).order_by(_ck.c.id.desc()).limit(TICKER))
        out.abnormal = [{"id": r.id, "at": iso(r.at), "venue_id": r.venue_id,
                         "name": r.name_masked, "id_number": r.id_masked, "status": r.status,
                         "popup_kind": r.popup_kind, "minor": bool(r.minor), "via": r.via}
                        for r in rows]
    return out


def _minutes(conn: Connection, now: datetime, cache: MinuteCache | None
             ) -> list[tuple[datetime, Minute]]:
    """The chart's minutes: the current clock minute and the 59 before it, oldest first."""
    current = floor_minute(now)
    starts = [current - MINUTE * back for back in range(HOUR_MINUTES - 1, -1, -1)]
    out = []
    for start in starts:
        closed = start + MINUTE + SETTLE <= now
        minute = cache.minutes.get(start) if cache is not None and closed else None
        if minute is None:
            minute = _span(conn, start, min(start + MINUTE, now))
            if cache is not None and closed:
                cache.minutes[start] = minute
        out.append((start, minute))
    if cache is not None:  # forget what scrolled off the chart
        for start in [s for s in cache.minutes if s < starts[0]]:
            del cache.minutes[start]
    return out


def _venue_rows(conn: Connection, ids: list[int], now: datetime, cache: MinuteCache | None
                ) -> dict[int, tuple]:
    """id -> (id, name, district, capacity); cached rows are re-read every minute."""
    known: dict[int, tuple] = {}
    if cache is not None:
        if cache.venues_minute != floor_minute(now):
            cache.venues, cache.venues_minute = {}, floor_minute(now)
        known = cache.venues
    missing = [i for i in ids if i not in known]
    for start in range(0, len(missing), _VENUE_CHUNK):
        chunk = missing[start:start + _VENUE_CHUNK]
        for row in conn.execute(select(_v.c.id, _v.c.name, _v.c.district, _v.c.capacity)
                                .where(_v.c.id.in_(chunk))):
            known[row.id] = tuple(row)
    return {i: known[i] for i in ids if i in known}


def _active_codes(conn: Connection, venue_ids: list[int]) -> dict[int, int]:
    if not venue_ids:
        return {}
    rows = conn.execute(select(_lb.c.venue_id, func.count()).where(
        _lb.c.venue_id.in_(venue_ids), _lb.c.state == "active").group_by(_lb.c.venue_id))
    return dict(rows.all())


def _add(into: dict[int, int], counts: dict[int, int]) -> None:
    for venue_id, count in counts.items():
        into[venue_id] = into.get(venue_id, 0) + count


def crowding(conn: Connection, *, now: datetime, cache: MinuteCache | None = None) -> dict:
    """The wallboard's message at `now` (an aware datetime): the contract's fields
    (type, at, scans_per_min, alerts_last_hour, venues) and the board's extras (window, per
    minute series, districts, abnormal-arrival ticker, advice)."""
    now = now.astimezone(UTC)
    minutes = _minutes(conn, now, cache)
    current = minutes[-1][0]

    # Sliding windows = whole minutes of the chart + a partial minute read at the edge.
    recent_edge = now - MINUTE * RECENT_MINUTES
    recent: dict[int, int] = dict(_span(conn, recent_edge, current - MINUTE * (
        RECENT_MINUTES - 1), abnormal=False).venues)
    rate_counts: dict[int, int] = {}
    for start, minute in minutes:
        if start >= current - MINUTE * (RECENT_MINUTES - 1):
            _add(recent, minute.venues)
        if start >= current - MINUTE * (RATE_MINUTES - 1):
            _add(rate_counts, minute.venues)
    rate_span = (now - (current - MINUTE * (RATE_MINUTES - 1))) / MINUTE  # minutes, 4..5
    last_minute = _span(conn, now - MINUTE, current, abnormal=False).total + minutes[-1][1].total
    hour_edge = _span(conn, now - MINUTE * HOUR_MINUTES, minutes[0][0])
    alerts = hour_edge.alerts + sum(m.alerts for _, m in minutes)

    inside = all_occupancy(conn, now=now)
    active = sorted({v for v, n in recent.items() if n} | {v for v, n in inside.items() if n})
    rows = _venue_rows(conn, active, now, cache)
    venues = []
    for venue_id, (_id, name, district, capacity) in rows.items():
        count, occupied = recent.get(venue_id, 0), inside.get(venue_id, 0)
        venues.append({"venue_id": venue_id, "name": name, "district": district,
                       "recent": count, "occupancy": occupied, "capacity": capacity,
                       "level": level(occupied, capacity),
                       "load": round(occupied / (capacity or NOMINAL_CAPACITY), 3),
                       "rate_per_min": round(rate_counts.get(venue_id, 0) / rate_span, 1)})
    venues.sort(key=lambda v: (-v["load"], -v["recent"], v["venue_id"]))

    names = {v["venue_id"]: v for v in venues}
    spans = [hour_edge, *(m for _, m in minutes)]
    ticker = sorted((a for m in spans for a in m.abnormal), reverse=True,
                    key=lambda a: (datetime.fromisoformat(a["at"]), a["id"]))
    ticker = [{**a, "venue_name": names.get(a["venue_id"], {}).get("name"),
               "district": names.get(a["venue_id"], {}).get("district")}
              for a in ticker[:TICKER]]

    return {
        "type": "crowding",
        "at": iso(now),
        "scans_per_min": last_minute,
        "alerts_last_hour": alerts,
        "venues": venues[:MAX_VENUES],
        "venues_active": len(venues),
        "window_minutes": RECENT_MINUTES,
        "districts": _districts(venues),
        "series": [{"at": iso(start), "count": m.total, "alerts": m.alerts}
                   for start, m in minutes],
        "ticker": ticker,
        "advice": _advice(conn, venues),
    }


def _districts(venues: list[dict]) -> list[dict]:
    """Per district: active venues, check-ins in the window, busy and crowded venues."""
    out: dict[str, dict] = {}
    for v in venues:
        d = out.setdefault(v["district"], {"district": v["district"], "venues": 0, "recent": 0,
                                           "occupancy": 0, "busy": 0, "crowded": 0,
                                           "level": "normal"})
        d["venues"] += 1
        d["recent"] += v["recent"]
        d["occupancy"] += v["occupancy"]
        if v["level"] != "normal":
            d[v["level"]] += 1
        if LEVELS.index(v["level"]) > LEVELS.index(d["level"]):
            d["level"] = v["level"]
    return sorted(out.values(), key=lambda d: (-LEVELS.index(d["level"]), -d["crowded"],
                                               -d["busy"], -d["recent"], d["district"]))


def _advice(conn: Connection, venues: list[dict]) -> list[dict]:
    """Where the scan rate outgrows the venue's codes, and where entry must be limited."""
    hot = [v for v in venues
           if codes_needed(v["rate_per_min"]) > 1 or v["level"] == "crowded"][:_VENUE_CHUNK]
    codes = _active_codes(conn, [v["venue_id"] for v in hot])
    out = [a for v in hot if (a := advise(v, codes.get(v["venue_id"], 0))) is not None]
    out.sort(key=lambda a: (a["kind"] != "more_codes", -a["add"], -a["rate_per_min"]))
    return out[:MAX_ADVICE]


def district_view(frame: dict, district: str) -> dict:
    """The board as a district's officials see it: the venues, districts, ticker and advice
    of their district only. The city's totals (scans a minute, alerts in the hour, the
    per-minute series) stay: counts, naming no venue and no one; `scope` says so."""
    def mine(items: list[dict]) -> list[dict]:
        return [item for item in items if item.get("district") == district]

    venues = mine(frame["venues"])
    return {**frame, "venues": venues, "venues_active": len(venues),
            "districts": mine(frame["districts"]), "ticker": mine(frame["ticker"]),
            "advice": mine(frame["advice"]),
            "scope": {"district": district, "totals": "city"}}


def advise(venue: dict, codes: int) -> dict | None:
    """The advice for one venue (its level and rate_per_min known) with `codes` active QR
    codes: more_codes when its scan rate needs more, limit_entry when it is crowded."""
    need = codes_needed(venue["rate_per_min"])
    base = {"venue_id": venue["venue_id"], "name": venue.get("name"),
            "district": venue.get("district"), "level": venue["level"],
            "rate_per_min": venue["rate_per_min"], "codes": codes, "codes_needed": need}
    if need > codes:
        return {**base, "kind": "more_codes", "add": need - codes}
    if venue["level"] == "crowded":
        return {**base, "kind": "limit_entry", "add": 0}
    return None


def venue_crowding(conn: Connection, venue_id: int, *, now: datetime) -> dict:
    """One venue's `occupancy` event for its registrars' feed: the people inside against its
    capacity, its level, and the wallboard's advice for it (or None)."""
    return venues_crowding(conn, [venue_id], now=now)[venue_id]


def venues_crowding(conn: Connection, venue_ids: list[int], *, now: datetime
                    ) -> dict[int, dict]:
    """venue_crowding for several venues, one statement per part whatever their number (the
    feeds' recount: realtime/occupancy.py)."""
    now = now.astimezone(UTC)
    capacities = dict(conn.execute(select(_v.c.id, _v.c.capacity)
                                   .where(_v.c.id.in_(venue_ids))).all())
    inside_of = occupancy(conn, venue_ids, now=now)
    arrivals_of = dict(conn.execute(
        select(_ck.c.venue_id, func.count())
        .where(_ck.c.venue_id.in_(venue_ids), _ck.c.at > now - MINUTE * RATE_MINUTES,
               _ck.c.at <= now)
        .group_by(_ck.c.venue_id)).all())
    codes_of = _active_codes(conn, venue_ids)
    out = {}
    for venue_id in venue_ids:
        capacity, inside = capacities.get(venue_id), inside_of.get(venue_id, 0)
        venue = {"venue_id": venue_id, "level": level(inside, capacity),
                 "rate_per_min": round(arrivals_of.get(venue_id, 0) / RATE_MINUTES, 1)}
        out[venue_id] = {**occupancy_event(venue_id, inside, capacity), "level": venue["level"],
                         "advice": advise(venue, codes_of.get(venue_id, 0)), "at": iso(now)}
    return out
