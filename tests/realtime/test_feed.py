"""The venue feed through the app (TestClient with lifespan, real Redis pub/sub)."""

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.conftest import ADMIN, add_co_registrar


def _feed(client, venue_id, headers, after=None):
    url = f"/ws/venues/{venue_id}/feed" + (f"?after={after}" if after is not None else "")
    return client.websocket_connect(url, headers=headers)


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
            got = [ws.receive_json(), ws.receive_json()]
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


def test_a_scan_reaches_this_process_feeds_straight_from_its_writer(client, people,
                                                                   venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    with _feed(client, venue["id"], owner["headers"]) as ws:
        assert ws.receive_json()["type"] == "ready"
        local, gaps = (_metric(client, name) for name in
                       ("scanbook_feed_local_batches", "scanbook_feed_gaps"))
        for i in range(4):
            checkin_id = _scan(client, people.make(f"访客{i}"), logbook["token"])
            assert ws.receive_json()["id"] == checkin_id
        # The first batch may wait for Redis (the hub had no batch to follow on from), and
        # on a busy machine a Redis copy can still win the race now and then; the others
        # follow on, and their Redis copies are neither repeated nor taken for gaps.
        assert _metric(client, "scanbook_feed_local_batches") - local >= 2
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
        assert ws.receive_json()["id"] == new
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
