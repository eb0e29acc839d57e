"""The venue feed through the app (TestClient with lifespan, real Redis pub/sub)."""

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.conftest import ADMIN, add_co_registrar


def _feed(client, venue_id, headers, after=None):
    url = f"/ws/venues/{venue_id}/feed" + (f"?after={after}" if after is not None else "")
    return client.websocket_connect(url, headers=headers)


def _next(ws, skip=("occupancy", "checkout")):
    """The next event that is not one of `skip` (occupancy comes whenever it changes)."""
    while True:
        event = ws.receive_json()
        if event.get("type") not in skip:
            return event


def _scan(client, person, code):
    r = client.post("/api/scan", headers=person["headers"], json={"code": code})
    assert r.status_code in (200, 201), r.text
    return r.json()["checkin_id"]


def test_live_checkin_reaches_every_registrar(client, people, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    co = people.make("赵六")
    add_co_registrar(client, owner, venue["id"], co)
    second = client.post(f"/api/venues/{venue['id']}/logbooks", headers=co["headers"],
                         json={"label": "西门"}).json()
    visitor = people.make("欧阳娜娜")
    with _feed(client, venue["id"], owner["headers"]) as a, \
            _feed(client, venue["id"], co["headers"]) as b:
        assert a.receive_json()["type"] == "ready" and b.receive_json()["type"] == "ready"
        first_id = _scan(client, visitor, logbook["token"])
        second_id = _scan(client, visitor, second["token"])
        for ws in (a, b):
            got = [_next(ws), _next(ws)]
            assert [g["id"] for g in got] == [first_id, second_id]
            assert [g["logbook_label"] for g in got] == ["东门", "西门"]
            event = got[0]
            assert event["type"] == "checkin" and event["name"] == "欧阳**"
            assert set(event) >= {"id", "venue_id", "logbook_id", "logbook_label", "name",
                                  "id_number", "status", "popup_kind", "alert", "minor", "via",
                                  "at"}
            assert "*" * 14 in event["id_number"]


def _metric(client, name):
    lines = client.get("/metrics").text.splitlines()
    return float(dict(line.split(" ", 1) for line in lines if line.startswith(name + " "))[name])


def test_scans_reach_the_feed_through_redis_in_order_with_no_gap(client, people,
                                                               venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    with _feed(client, venue["id"], owner["headers"]) as ws:
        assert ws.receive_json()["type"] == "ready"
        gaps = _metric(client, "scanbook_feed_gaps")
        for i in range(4):
            checkin_id = _scan(client, people.make(f"访客{i}"), logbook["token"])
            assert _next(ws)["id"] == checkin_id
        assert _metric(client, "scanbook_feed_gaps") == gaps


def test_resume_after_sends_missed_then_ready_then_live(client, people, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    ids = [_scan(client, people.make(f"访客{i}"), logbook["token"]) for i in range(4)]
    with _feed(client, venue["id"], owner["headers"], after=ids[1]) as ws:
        replayed = [ws.receive_json(), ws.receive_json()]
        assert [e["id"] for e in replayed] == ids[2:]
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["last_id"] == ids[3]
        new = _scan(client, people.make("新来的"), logbook["token"])
        assert _next(ws)["id"] == new
    with _feed(client, venue["id"], owner["headers"], after=0) as ws:
        assert [ws.receive_json()["id"] for _ in range(5)] == [*ids, new]
        assert ws.receive_json()["type"] == "ready"


def test_logbook_event_on_delete(client, people, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    with _feed(client, venue["id"], owner["headers"]) as ws:
        ws.receive_json()
        client.delete(f"/api/logbooks/{logbook['id']}", headers=owner["headers"])
        event = ws.receive_json()
        assert event == {"type": "logbook", "logbook_id": logbook["id"], "venue_id": venue["id"],
                         "state": "deleted", "reason": event["reason"]}


def test_heartbeat_ping(client, venue_with_logbook, monkeypatch):
    import realtime.feed

    monkeypatch.setattr(realtime.feed, "PING_SECONDS", 0.1)
    owner, venue, logbook = venue_with_logbook
    with _feed(client, venue["id"], owner["headers"]) as ws:
        assert ws.receive_json()["type"] == "ready"
        assert ws.receive_json() == {"type": "ping"}


@pytest.mark.parametrize(("who", "code"), [("anon", 4401), ("stranger", 4403), ("missing", 4404)])
def test_close_codes(client, people, venue_with_logbook, who, code):
    owner, venue, logbook = venue_with_logbook
    headers = {} if who == "anon" else people.make()["headers"]
    venue_id = 999999 if who == "missing" else venue["id"]
    with pytest.raises(WebSocketDisconnect) as info, _feed(client, venue_id, headers) as ws:
        ws.receive_json()
    assert info.value.code == code


def test_official_may_watch_any_venue(client, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    with _feed(client, venue["id"], ADMIN) as ws:
        assert ws.receive_json()["type"] == "ready"


def test_browser_session_cookie_authenticates_websocket(client, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    r = client.post("/login", data={"token": owner["token"], "next": "/"},
                    follow_redirects=False)
    assert r.status_code == 303 and "scanbook_session" in r.cookies
    with client.websocket_connect(f"/ws/venues/{venue['id']}/feed") as ws:
        assert ws.receive_json()["type"] == "ready"


def _until(ws, kind, **fields):
    """Events up to and including the first of type `kind` with these fields."""
    seen = []
    while True:
        event = ws.receive_json()
        seen.append(event)
        if event.get("type") == kind and all(event.get(k) == v for k, v in fields.items()):
            return seen


def test_checkouts_and_occupancy_reach_the_feed(client, people, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    r = client.post("/api/venues", headers=owner["headers"], json={
        "name": "隔壁", "address": "x", "district": "朝阳区", "category": "shop"})
    elsewhere = client.post(f"/api/venues/{r.json()['id']}/logbooks",
                            headers=owner["headers"], json={"label": "门"}).json()
    a, b = people.make("甲"), people.make("乙")
    with _feed(client, venue["id"], owner["headers"]) as ws:
        assert ws.receive_json()["type"] == "ready"
        first = _scan(client, a, logbook["token"])
        seen = _until(ws, "occupancy", inside=1)
        assert seen[0]["type"] == "checkin" and seen[0]["id"] == first
        assert seen[0]["left_at"] is None
        assert seen[-1] == {**seen[-1], "venue_id": venue["id"], "capacity": 200,
                            "full": False, "level": "normal"}
        second = _scan(client, b, logbook["token"])
        assert _until(ws, "occupancy", inside=2)[0]["id"] == second

        # a citizen's 离场; another's scan elsewhere ends their stay here
        left = client.post("/api/me/checkout", headers=a["headers"]).json()
        assert _until(ws, "checkout", id=first)[-1] == {
            "type": "checkout", "id": first, "venue_id": venue["id"],
            "left_at": left["left_at"]}
        moved = client.post("/api/scan", headers=b["headers"],
                            json={"code": elsewhere["token"]}).json()
        assert _until(ws, "checkout", id=second)[-1]["left_at"] == moved["at"]
        assert _until(ws, "occupancy", inside=0)
        # the checkouts were not mistaken for feed positions: a later check-in still comes
        third = _scan(client, people.make("丙"), logbook["token"])
        assert _until(ws, "checkin", id=third)


def test_occupancy_is_sent_at_most_once_a_second(client, people, venue_with_logbook):
    from datetime import datetime

    owner, venue, logbook = venue_with_logbook
    with _feed(client, venue["id"], owner["headers"]) as ws:
        assert ws.receive_json()["type"] == "ready"
        for i in range(6):
            _scan(client, people.make(f"访客{i}"), logbook["token"])
        counted = [datetime.fromisoformat(e["at"]) for e in _until(ws, "occupancy", inside=6)
                   if e["type"] == "occupancy"]
        gaps = [(later - earlier).total_seconds()
                for earlier, later in zip(counted, counted[1:], strict=False)]
        assert all(gap >= 1.0 for gap in gaps), gaps


def test_full_venue_advice_reaches_its_registrars(client, people):
    owner = people.make("李四")
    venue = client.post("/api/venues", headers=owner["headers"], json={
        "name": "小店", "address": "x", "district": "朝阳区", "category": "shop",
        "capacity": 2}).json()
    book = client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                       json={"label": "门"}).json()
    with _feed(client, venue["id"], owner["headers"]) as ws:
        assert ws.receive_json()["type"] == "ready"
        for i in range(2):
            _scan(client, people.make(f"访客{i}"), book["token"])
        event = _until(ws, "occupancy", inside=2)[-1]
        assert (event["full"], event["level"]) == (True, "crowded")
        assert event["advice"]["kind"] == "limit_entry"


def test_venues_are_recounted_together_one_recount_at_a_time(client, people):
    """The venues' occupancy watchers wake together; a process runs one recount at a time,
    for every venue that asked meanwhile, so the event loop never competes with several pool
    threads for the GIL."""
    import threading
    import time

    occupancy = client.app.state.occupancy
    count, lock, running, most, batches = occupancy._count, threading.Lock(), [0], [0], []

    def slow_count(venue_ids):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            batches.append(list(venue_ids))
        try:
            time.sleep(0.5)
            return count(venue_ids)
        finally:
            with lock:
                running[0] -= 1

    occupancy._count = slow_count
    owner = people.make("李四")
    books = []
    for name in ("甲店", "乙店", "丙店"):
        venue = client.post("/api/venues", headers=owner["headers"], json={
            "name": name, "address": "x", "district": "朝阳区", "category": "shop"}).json()
        books.append((venue, client.post(f"/api/venues/{venue['id']}/logbooks",
                                         headers=owner["headers"], json={"label": "门"}).json()))
    with _feed(client, books[0][0]["id"], owner["headers"]) as a, \
            _feed(client, books[1][0]["id"], owner["headers"]) as b, \
            _feed(client, books[2][0]["id"], owner["headers"]) as c:
        feeds = (a, b, c)
        assert all(ws.receive_json()["type"] == "ready" for ws in feeds)
        for i, (_venue, book) in enumerate(books):
            _scan(client, people.make(f"访客{i}"), book["token"])
        for ws, (venue, _book) in zip(feeds, books, strict=True):
            event = _until(ws, "occupancy", inside=1)[-1]
            assert event["venue_id"] == venue["id"]
    assert most[0] == 1
    # The scans after the first came while its recount ran: they were counted together.
    assert max(map(len, batches)) >= 2, batches
