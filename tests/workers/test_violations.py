"""Violations suspend a registrar's logbooks until an official lifts them."""

from __future__ import annotations

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.conftest import ADMIN
from tests.workers.helpers import change, job, submit


def _scan(client, person, code):
    return client.post("/api/scan", headers=person["headers"], json={"code": code})


def test_violation_suspends_until_lifted(client, people, run_jobs, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    second = client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                         json={"label": "西门"}).json()
    visitor = people.make("访客")
    feed_url = f"/ws/venues/{venue['id']}/feed"
    with client.websocket_connect(feed_url, headers=owner["headers"]) as feed:
        assert feed.receive_json()["type"] == "ready"
        queued = submit(client, "/api/admin/violations",
                        {"citizen_id": owner["id"], "reason": "未落实扫码查验"})
        assert queued["violation_id"] and queued["violation"]["active"] is True
        run_jobs()
        events = [feed.receive_json(), feed.receive_json()]
        assert {e["state"] for e in events} == {"suspended"}
        # Suspended is off duty: the feed closes after telling why (docs/architecture.md).
        with pytest.raises(WebSocketDisconnect) as closed:
            feed.receive_json()
        assert closed.value.code == 4403
    result = job(client, queued["job_id"])["result"]
    assert result["logbooks"] == 2
    for book in (logbook, second):
        r = _scan(client, visitor, book["token"])
        assert r.status_code == 410 and r.json()["error"] == "logbook_suspended"
    got = client.get(f"/api/logbooks/{logbook['id']}", headers=owner["headers"]).json()
    assert got["state"] == "suspended" and "未落实扫码查验" in got["reason"]
    with client.websocket_connect(feed_url, headers=owner["headers"]) as feed, \
            pytest.raises(WebSocketDisconnect) as refused:
        feed.receive_json()
    assert refused.value.code == 4403

    listed = client.get(f"/api/admin/violations?citizen_id={owner['id']}&active=true",
                        headers=ADMIN).json()["items"]
    assert [v["id"] for v in listed] == [queued["violation_id"]]

    lifted = client.post(f"/api/admin/violations/{queued['violation_id']}/lift",
                         headers=ADMIN, json={"reason": "已整改"})
    assert lifted.status_code == 202, lifted.text
    assert lifted.json()["violation"]["active"] is False
    run_jobs()
    with client.websocket_connect(feed_url, headers=owner["headers"]) as feed:
        assert feed.receive_json()["type"] == "ready"  # back on duty
    books = client.get(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"])
    assert {b["state"] for b in books.json()["items"]} == {"active"}
    assert _scan(client, visitor, logbook["token"]).status_code == 201
    again = client.post(f"/api/admin/violations/{queued['violation_id']}/lift", headers=ADMIN)
    assert again.status_code == 409 and again.json()["error"] == "conflict"


def test_two_violations_need_two_lifts_and_revocation_outranks(client, people, run_jobs,
                                                              venue_with_logbook):
    owner, _venue, logbook = venue_with_logbook
    visitor = people.make("访客")
    first = submit(client, "/api/admin/violations", {"citizen_id": owner["id"], "reason": "一"})
    second = submit(client, "/api/admin/violations", {"citizen_id": owner["id"], "reason": "二"})
    run_jobs()
    r = client.delete(f"/api/admin/violations/{first['violation_id']}", headers=ADMIN)
    assert r.status_code == 202
    run_jobs()
    assert _scan(client, visitor, logbook["token"]).json()["error"] == "logbook_suspended"
    # not green while suspended: revoked, and lifting the last violation does not undo that
    submit(client, "/api/admin/status-changes", {"changes": [change(owner, "red", "密接")]})
    run_jobs()
    assert _scan(client, visitor, logbook["token"]).json()["error"] == "logbook_revoked"
    client.post(f"/api/admin/violations/{second['violation_id']}/lift", headers=ADMIN)
    run_jobs()
    assert _scan(client, visitor, logbook["token"]).json()["error"] == "logbook_revoked"


def test_violation_validation(client, people):
    person = people.make()
    for body, status in (({"citizen_id": 99999, "reason": "x"}, 404),
                         ({"citizen_id": "1", "reason": "x"}, 422),
                         ({"citizen_id": person["id"], "reason": ""}, 422)):
        r = client.post("/api/admin/violations", headers=ADMIN, json=body)
        assert r.status_code == status, r.text
    assert client.post("/api/admin/violations/99999/lift", headers=ADMIN).status_code == 404
    r = client.post("/api/admin/violations", headers=person["headers"],
                    json={"citizen_id": person["id"], "reason": "x"})
    assert r.status_code == 403


def test_suspended_registrar_gets_no_new_logbook_until_lifted(client, people, run_jobs,
                                                              venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    url = f"/api/venues/{venue['id']}/logbooks"
    queued = submit(client, "/api/admin/violations", {"citizen_id": owner["id"],
                                                      "reason": "未查验健康码"})
    run_jobs()
    r = client.post(url, headers=owner["headers"], json={"label": "北门"})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert "violation" in r.json()["message"]
    client.post(f"/api/admin/violations/{queued['violation_id']}/lift", headers=ADMIN)
    run_jobs()
    assert client.post(url, headers=owner["headers"], json={"label": "北门"}).status_code == 201
