"""/ws/wallboard and the crowding it shows: the rules of models/crowding.py on check-ins placed
at known times (window edges included), the minute cache giving the same answers as a full
read, and the WebSocket — officials only, the contract's fields at least once a second, one
aggregator per process broadcasting the same frame to every wallboard."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import insert
from starlette.websockets import WebSocketDisconnect
from websockets.sync.client import connect

from models.crowding import (
    NOMINAL_CAPACITY,
    MinuteCache,
    codes_needed,
    crowding,
    level,
    venue_crowding,
    venues_crowding,
)
from models.tables import Checkin
from tests.conftest import ADMIN
from tests.servers import running_server

# Only the bearer token: Starlette's TestClient adds handshake headers to the dict it is given.
OFFICIAL = {"Authorization": ADMIN["Authorization"]}
CONTRACT_VENUE = {"venue_id", "name", "district", "recent", "capacity", "level"}
NOW = datetime(2026, 5, 1, 4, 30, 20, 500000, tzinfo=UTC)  # 12:30:20.5 in Beijing


@pytest.mark.parametrize(("recent", "capacity", "expected"), [
    (0, 10, "normal"), (4, 10, "normal"), (5, 10, "busy"), (8, 10, "busy"), (9, 10, "crowded"),
    (30, 10, "crowded"), (49, 100, "normal"), (50, 100, "busy"), (89, 100, "busy"),
    (90, 100, "crowded"),
    # no capacity: the nominal one (150) — busy from 75 in 15 min (5 a minute), crowded 135
    (74, None, "normal"), (75, None, "busy"), (134, None, "busy"), (135, None, "crowded"),
])
def test_levels_against_capacity(recent, capacity, expected):
    assert NOMINAL_CAPACITY == 150
    assert level(recent, capacity) == expected


@pytest.mark.parametrize(("rate", "codes"), [(0, 1), (8, 1), (8.1, 2), (16, 2), (30, 4)])
def test_codes_needed_for_a_scan_rate(rate, codes):
    assert codes_needed(rate) == codes


# --- crowding() on check-ins at known times ------------------------------------------------

class Place:
    """Check-ins inserted with chosen times (the group-commit path stamps "now")."""

    def __init__(self, engine, citizen_id: int, venue_id: int, logbook_id: int):
        self.engine = engine
        self.citizen_id = citizen_id
        self.venue_id = venue_id
        self.logbook_id = logbook_id

    def add(self, *ago: timedelta, status: str = "green", name: str = "张**") -> None:
        rows = [{"venue_id": self.venue_id, "logbook_id": self.logbook_id,
                 "citizen_id": self.citizen_id, "via": "scan", "status": status,
                 "popup_kind": None, "alert": status != "green", "minor": False,
                 "name_masked": name, "id_masked": "11**************14", "at": NOW - a}
                for a in ago]
        with self.engine.begin() as conn:
            conn.execute(insert(Checkin.__table__), rows)


def _venue(client, owner, name, district, capacity=None):
    body = {"name": name, "address": "某路1号", "district": district, "category": "shop"}
    if capacity is not None:
        body["capacity"] = capacity
    venue = client.post("/api/venues", headers=owner["headers"], json=body).json()
    book = client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                       json={"label": "正门"}).json()
    return venue, book


@pytest.fixture
def places(client, people, engine):
    owner = people.make("李四")
    out = {}
    for key, name, district, capacity in [("mall", "朝阳大悦城", "朝阳区", 10),
                                          ("station", "北京南站", "丰台区", None),
                                          ("shop", "便利店", "朝阳区", 100)]:
        venue, book = _venue(client, owner, name, district, capacity)
        out[key] = Place(engine, owner["id"], venue["id"], book["id"])
    return out


S = lambda seconds: timedelta(seconds=seconds)  # noqa: E731
M = lambda minutes: timedelta(minutes=minutes)  # noqa: E731


def _by_id(message: dict) -> dict[int, dict]:
    return {v["venue_id"]: v for v in message["venues"]}


def test_windows_levels_and_edges(engine, places):
    mall, station, shop = places["mall"], places["station"], places["shop"]
    # mall (capacity 10): 9 in the last 15 minutes → crowded; one just outside the window
    mall.add(S(1), S(30), S(59), S(61), M(3), M(7), M(10), M(14), M(14) + S(59))
    mall.add(M(15) + S(1), M(20))
    # station (no capacity): 80 in the window → busy against the nominal 150
    station.add(*[S(5 + i * 10) for i in range(80)])
    # shop (capacity 100): 2 → normal; abnormal arrivals inside and outside the hour
    shop.add(M(2), status="red", name="王**")
    shop.add(M(59) + S(30), status="yellow", name="欧阳**")
    shop.add(M(60) + S(30), status="popup", name="赵*")

    with engine.connect() as conn:
        message = crowding(conn, now=NOW)

    assert message["type"] == "crowding"
    assert message["at"] == "2026-05-01T12:30:20.500000+08:00"
    venues = _by_id(message)
    assert venues[mall.venue_id]["recent"] == 9
    assert venues[mall.venue_id]["capacity"] == 10
    assert venues[mall.venue_id]["level"] == "crowded"
    assert venues[station.venue_id]["recent"] == 80
    assert venues[station.venue_id]["capacity"] is None
    assert venues[station.venue_id]["level"] == "busy"
    assert venues[shop.venue_id]["recent"] == 1
    assert venues[shop.venue_id]["level"] == "normal"
    assert [v["venue_id"] for v in message["venues"]][:2] == [mall.venue_id, station.venue_id]
    for venue in message["venues"]:
        assert set(venue) >= CONTRACT_VENUE
    # last 60 s: mall 1 s, 30 s, 59 s (not 61 s) + station's 5..55 s (6)
    assert message["scans_per_min"] == 3 + 6
    # the hour: red at 2 min and yellow at 59.5 min; the popup at 60.5 min is out
    assert message["alerts_last_hour"] == 2
    assert [(a["name"], a["status"]) for a in message["ticker"]] == [("王**", "red"),
                                                                     ("欧阳**", "yellow")]
    assert message["ticker"][0]["venue_name"] == "便利店"
    assert message["ticker"][0]["district"] == "朝阳区"

    series = message["series"]
    assert len(series) == 60
    assert series[-1]["at"] == "2026-05-01T12:30:00+08:00"  # the current (open) minute
    assert series[0]["at"] == "2026-05-01T11:31:00+08:00"
    # the chart's span starts at 11:31: the yellow arrival (11:30:50) is before it
    assert sum(m["count"] for m in series) == 11 + 80 + 1
    assert series[-1]["count"] == 1 + 2  # since 12:30:00: mall's 1 s ago, station's 5, 15 s
    districts = {d["district"]: d for d in message["districts"]}
    # inside: the mall's 11 and the shop's 3 (none left, all inside their venues' limits)
    assert districts["朝阳区"] == {"district": "朝阳区", "venues": 2, "recent": 10,
                                  "occupancy": 14, "busy": 0, "crowded": 1, "level": "crowded"}
    assert districts["丰台区"]["busy"] == 1
    assert message["districts"][0]["district"] == "朝阳区"  # the worst first


def test_levels_follow_the_people_inside_not_the_arrivals(engine, places):
    from sqlalchemy import update

    mall = places["mall"]  # capacity 10, a shop: stays end after 120 minutes
    mall.add(*[M(30) + S(i) for i in range(9)])  # arrived half an hour ago, still inside
    mall.add(M(125))  # never left, but past the limit: gone
    with engine.connect() as conn:
        venue = _by_id(crowding(conn, now=NOW))[mall.venue_id]
    assert (venue["recent"], venue["occupancy"], venue["level"]) == (0, 9, "crowded")
    with engine.connect() as conn:
        [advice] = [a for a in crowding(conn, now=NOW)["advice"]
                    if a["venue_id"] == mall.venue_id]
    assert advice["kind"] == "limit_entry"

    ck = Checkin.__table__
    with engine.begin() as conn:  # four of them left
        ids = conn.execute(ck.select().where(ck.c.venue_id == mall.venue_id)
                           .order_by(ck.c.id).limit(4)).all()
        conn.execute(update(ck).where(ck.c.id.in_([r.id for r in ids]))
                     .values(left_at=NOW - M(1)))
    with engine.connect() as conn:
        venue = _by_id(crowding(conn, now=NOW))[mall.venue_id]
    assert (venue["occupancy"], venue["level"]) == (5, "busy")


def test_advice_where_the_scan_rate_outgrows_the_codes(engine, places):
    station, mall = places["station"], places["mall"]
    # 60 check-ins over the last 4 minutes at one code: ≈ 14 a minute → 2 codes needed
    station.add(*[S(2 + i * 4) for i in range(60)])
    mall.add(*[S(10 + i) for i in range(9)])  # crowded, a slow rate: limit entry
    with engine.connect() as conn:
        message = crowding(conn, now=NOW)
    advice = {a["venue_id"]: a for a in message["advice"]}
    station_advice = advice[station.venue_id]
    assert station_advice["kind"] == "more_codes"
    assert station_advice["codes"] == 1 and station_advice["codes_needed"] == 2
    assert station_advice["add"] == 1
    assert station_advice["rate_per_min"] == pytest.approx(60 / (4 + 20.5 / 60), abs=0.1)
    assert advice[mall.venue_id]["kind"] == "limit_entry"
    assert message["advice"][0]["venue_id"] == station.venue_id  # more codes first


def test_several_venues_counted_together_as_each_alone(engine, places):
    """The feeds' recount (venues_crowding) gives each venue what counting it alone does."""
    station, mall, shop = places["station"], places["mall"], places["shop"]
    station.add(*[S(2 + i * 4) for i in range(60)])
    mall.add(*[S(10 + i) for i in range(9)])
    ids = [station.venue_id, mall.venue_id, shop.venue_id, 10**9]  # and one that is not
    with engine.connect() as conn:
        together = venues_crowding(conn, ids, now=NOW)
        alone = {venue_id: venue_crowding(conn, venue_id, now=NOW) for venue_id in ids}
    assert together == alone
    assert (together[station.venue_id]["advice"]["kind"], together[mall.venue_id]["level"],
            together[shop.venue_id]["inside"], together[10**9]["capacity"]) == (
        "more_codes", "crowded", 0, None)


def test_the_minute_cache_gives_the_same_answers(engine, places):
    mall, station = places["mall"], places["station"]
    mall.add(*[M(m) + S(7) for m in range(0, 70, 3)])
    station.add(*[S(s) for s in range(1, 3600, 97)], status="yellow")
    cache = MinuteCache()
    for step in [S(0), S(1), S(15), S(40), S(65), M(5), M(16) + S(3), M(61)]:
        now = NOW + step
        if step == M(5):  # a late arrival in the open minute is seen on the next tick
            mall.add(-step + S(1))
        with engine.connect() as conn:
            cached = crowding(conn, now=now, cache=cache)
            full = crowding(conn, now=now)
        assert cached == full, step
    assert len(cache.minutes) <= 60  # minutes that scrolled off the chart are forgotten


def test_nothing_unmasked_leaves(engine, client, people, venue_with_logbook, run_jobs):
    _owner, _venue, book = venue_with_logbook
    person = people.make("欧阳娜娜")
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": person["id_number"], "status": "red", "reason": "密接"}]})
    assert r.status_code == 202
    run_jobs()
    assert client.post("/api/scan", headers=person["headers"],
                       json={"code": book["token"]}).status_code == 201
    with engine.connect() as conn:
        message = crowding(conn, now=datetime.now(UTC))
    text = orjson.dumps(message).decode()
    assert person["id_number"] not in text and "欧阳娜娜" not in text
    assert message["ticker"][0]["name"] == "欧阳**"
    assert message["ticker"][0]["id_number"] == person["id_masked"]


# --- the WebSocket -------------------------------------------------------------------------

def _frames(ws, count: int) -> list[tuple[float, dict]]:
    out = []
    while len(out) < count:
        message = ws.receive_json()
        if message["type"] == "crowding":
            out.append((time.monotonic(), message))
    return out


def test_officials_only(client, people):
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(
            "/ws/wallboard") as ws:
        ws.receive_json()
    assert closed.value.code == 4401
    citizen = people.make()
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(
            "/ws/wallboard", headers=dict(citizen["headers"])) as ws:
        ws.receive_json()
    assert closed.value.code == 4403
    # the browser's way: the official's session cookie
    token = OFFICIAL["Authorization"].split(" ", 1)[1]
    assert client.post("/login", data={"token": token}, follow_redirects=False
                       ).status_code == 303
    with client.websocket_connect("/ws/wallboard") as ws:
        assert ws.receive_json()["type"] == "crowding"


def test_frames_at_least_once_a_second_with_the_contract_fields(client, people,
                                                                venue_with_logbook):
    owner, venue, book = venue_with_logbook  # capacity 200
    with client.websocket_connect("/ws/wallboard", headers=dict(OFFICIAL)) as ws:
        frames = _frames(ws, 5)
        gaps = [b[0] - a[0] for a, b in zip(frames, frames[1:], strict=False)]
        assert max(gaps) < 1.0, gaps
        first = frames[0][1]
        assert set(first) >= {"type", "at", "scans_per_min", "alerts_last_hour", "venues"}
        assert datetime.fromisoformat(first["at"]).utcoffset() == timedelta(hours=8)
        assert first["venues"] == [] and first["scans_per_min"] == 0

        for person in [people.make(f"访客{i}") for i in range(3)]:
            r = client.post("/api/scan", headers=person["headers"], json={"code": book["token"]})
            assert r.status_code == 201
        deadline = time.monotonic() + 5
        while True:
            message = _frames(ws, 1)[0][1]
            if message["venues"] or time.monotonic() > deadline:
                break
        assert message["scans_per_min"] == 3
        (row,) = message["venues"]
        assert {k: row[k] for k in CONTRACT_VENUE} == {
            "venue_id": venue["id"], "name": "望京SOHO塔1", "district": "朝阳区", "recent": 3,
            "capacity": 200, "level": "normal"}
        assert isinstance(message["alerts_last_hour"], int)
    wallboard = client.app.state.wallboard
    deadline = time.monotonic() + 5
    while wallboard.running and time.monotonic() < deadline:  # the last one out stops it
        time.sleep(0.05)
    assert not wallboard.running and wallboard.connections == 0


def test_a_real_server_broadcasts_one_frame_to_every_wallboard(people, venue_with_logbook):
    _owner, venue, book = venue_with_logbook
    with running_server() as server:
        url = f"{server.ws_url}/ws/wallboard"
        with connect(url, additional_headers=OFFICIAL, open_timeout=5) as a, \
                connect(url, additional_headers=OFFICIAL, open_timeout=5) as b:
            times, seen_a = [], []
            start = time.monotonic()
            while time.monotonic() - start < 3.2:
                message = orjson.loads(a.recv(timeout=2))
                if message["type"] == "crowding":
                    times.append(time.monotonic())
                    seen_a.append(message["at"])
            assert len(times) >= 3, times
            assert max(b2 - b1 for b1, b2 in zip(times, times[1:], strict=False)) < 1.0
            # b got the very same frames (one aggregator per process, not one per socket)
            seen_b = []
            while len(seen_b) < 3:
                message = orjson.loads(b.recv(timeout=2))
                if message["type"] == "crowding":
                    seen_b.append(message["at"])
            assert set(seen_b) & set(seen_a)


def test_the_aggregator_survives_a_database_outage_and_stops_with_the_last_board(engine):
    """Frames stop while the database is away (screens mark their data stale) and resume
    when it answers; nothing runs once the last wallboard has gone."""
    import asyncio

    from realtime.wallboard import Wallboard

    class Flaky:
        failures = 2

        def connect(self):
            if self.failures:
                self.failures -= 1
                raise ConnectionError("database away")
            return engine.connect()

    async def scenario() -> None:
        board = Wallboard(Flaky(), interval=0.05)
        async with board.subscribe() as box:
            frame = await box.get(timeout=5)
            assert frame is not None and orjson.loads(frame)["type"] == "crowding"
            assert board.failures == 2 and board.running
        assert not board.running and board.latest is None

    asyncio.run(scenario())
