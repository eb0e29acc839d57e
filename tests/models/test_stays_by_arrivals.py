"""A check-in batch ends its citizens' earlier open stays (models/stays.py
end_stays_by_arrivals, one statement on SQLite, a read and an update on PostgreSQL): each
stay ends where the citizen's next one begins, or at the venue's limit if that is earlier,
to the microsecond; the newest stays open; a queued offline scan older than a stay that began
since is itself ended when that stay began; a stay already ended is not ended again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from models.checkins import CheckinRequest, record_checkins
from models.tables import Checkin
from models.timeutil import iso
from tests.workers.helpers import checkin_at


def _venue(client, owner, name, minutes):
    venue = client.post("/api/venues", headers=owner["headers"], json={
        "name": name, "address": "某路1号", "district": "朝阳区", "category": "shop",
        "max_stay_minutes": minutes}).json()
    return client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                       json={"label": "正门"}).json()


def _batch(engine, requests, now):
    with engine.connect() as conn:
        results, _events, checkouts = record_checkins(conn, requests, now=now)
        conn.commit()
    assert all(not isinstance(r, Exception) for r in results), results
    return [r.checkin["id"] for r in results], checkouts


def _left(engine) -> dict[int, datetime | None]:
    with engine.connect() as conn:
        return dict(conn.execute(select(Checkin.id, Checkin.left_at)).all())


def test_each_stay_ends_at_the_next_arrival_or_at_its_limit(client, people):
    owner = people.make("李四")
    short, long_ = _venue(client, owner, "快餐店", 30), _venue(client, owner, "书店", 240)
    engine = client.app.state.engine
    # .9996 s: a time SQLite's date functions would round up into the next second.
    t0 = datetime(2026, 12, 6, 3, 4, 5, 999600, tzinfo=UTC)
    now = t0 + timedelta(minutes=50)
    late, early, lone = people.make("晚到"), people.make("早走"), people.make("独自")
    late_first = checkin_at(engine, late, short, t0)  # limit 30 min, next arrival at 45
    early_first = checkin_at(engine, early, long_, t0)  # limit 4 h, next arrival at 10 min
    lone_first = checkin_at(engine, lone, long_, t0)

    ids, checkouts = _batch(engine, [
        CheckinRequest(citizen_id=late["id"], code=long_["token"],
                       at=t0 + timedelta(minutes=45)),
        CheckinRequest(citizen_id=early["id"], code=short["token"],
                       at=t0 + timedelta(minutes=10, microseconds=1)),
    ], now)

    left = _left(engine)
    assert left[late_first] == t0 + timedelta(minutes=30)
    assert left[early_first] == t0 + timedelta(minutes=10, microseconds=1)
    assert left[lone_first] is None and left[ids[0]] is None and left[ids[1]] is None
    assert sorted(checkouts, key=lambda e: e["id"]) == sorted([
        {"type": "checkout", "id": late_first, "venue_id": short["venue_id"],
         "left_at": iso(t0 + timedelta(minutes=30))},
        {"type": "checkout", "id": early_first, "venue_id": long_["venue_id"],
         "left_at": iso(t0 + timedelta(minutes=10, microseconds=1))},
    ], key=lambda e: e["id"])


def test_several_arrivals_of_one_citizen_and_a_queued_older_scan(client, people):
    owner = people.make("李四")
    a, b, c = (_venue(client, owner, name, 240) for name in ("甲", "乙", "丙"))
    engine = client.app.state.engine
    t0 = datetime(2026, 12, 6, 3, 0, 0, tzinfo=UTC)  # no microseconds: stored .000000
    visitor = people.make("王五")
    first = checkin_at(engine, visitor, a, t0)
    newer = checkin_at(engine, visitor, b, t0 + timedelta(minutes=20))

    # One batch: a scan queued offline at minute 5 (older than `newer`), and one now.
    ids, checkouts = _batch(engine, [
        CheckinRequest(citizen_id=visitor["id"], code=c["token"], at=t0 + timedelta(minutes=5)),
        CheckinRequest(citizen_id=visitor["id"], code=a["token"]),
    ], t0 + timedelta(minutes=30))
    queued, latest = ids

    left = _left(engine)
    assert left[first] == t0 + timedelta(minutes=20)  # ended by `newer`, and not again
    assert left[queued] == t0 + timedelta(minutes=20)  # ended when `newer` began
    assert left[newer] == t0 + timedelta(minutes=30)
    assert left[latest] is None
    assert {e["id"]: e["left_at"] for e in checkouts} == {
        queued: iso(t0 + timedelta(minutes=20)), newer: iso(t0 + timedelta(minutes=30))}

    # A stay already ended is not ended again: the next batch ends only `latest`.
    _ids, checkouts = _batch(engine, [CheckinRequest(citizen_id=visitor["id"],
                                                     code=b["token"])],
                             t0 + timedelta(minutes=40))
    assert [e["id"] for e in checkouts] == [latest]
