"""A registrar who is no longer green loses every logbook at once; nothing comes back."""

from __future__ import annotations

from tests.conftest import add_co_registrar
from tests.workers.helpers import change, job, submit


def _venue(client, owner, name="三里屯太古里"):
    r = client.post("/api/venues", headers=owner["headers"], json={
        "name": name, "address": "三里屯路19号", "district": "朝阳区", "category": "mall"})
    assert r.status_code == 201, r.text
    return r.json()


def _logbook(client, who, venue_id, label):
    r = client.post(f"/api/venues/{venue_id}/logbooks", headers=who["headers"],
                    json={"label": label})
    return r


def _scan(client, person, code):
    return client.post("/api/scan", headers=person["headers"], json={"code": code})


def test_non_green_registrar_loses_every_logbook(client, people, run_jobs,
                                                 venue_with_logbook):
    owner, venue, first = venue_with_logbook
    second = _logbook(client, owner, venue["id"], "西门").json()
    other_owner = people.make("钱七")
    elsewhere = _venue(client, other_owner, "国贸商城")
    add_co_registrar(client, other_owner, elsewhere["id"], owner)
    third = _logbook(client, owner, elsewhere["id"], "北门").json()  # owner's, at another venue
    theirs = _logbook(client, other_owner, elsewhere["id"], "南门").json()
    visitor = people.make("欧阳娜娜")
    assert _scan(client, visitor, first["token"]).status_code == 201

    with client.websocket_connect(f"/ws/venues/{venue['id']}/feed",
                                  headers=owner["headers"]) as feed:
        assert feed.receive_json()["type"] == "ready"
        queued = submit(client, "/api/admin/status-changes",
                        {"changes": [change(owner, "yellow", "同时空伴随")]})
        run_jobs()
        events = []
        while len(events) < 2:  # (the visitor's check-in may still bring an occupancy event)
            event = feed.receive_json()
            if event["type"] != "occupancy":
                events.append(event)
    assert sorted(e["logbook_id"] for e in events) == [first["id"], second["id"]]
    assert all(e["type"] == "logbook" and e["state"] == "revoked" and e["reason"]
               for e in events)
    result = job(client, queued["job_id"])["result"]
    assert result["revoked_logbooks"] == 3 and result["ended_duties"] == 1

    for book in (first, second, third):
        r = _scan(client, people.make("路人"), book["token"])
        assert r.status_code == 410 and r.json()["error"] == "logbook_revoked", r.text
        reader = other_owner if book is third else owner
        state = client.get(f"/api/logbooks/{book['id']}", headers=reader["headers"]).json()
        assert state["state"] == "revoked" and state["reason"]
    assert _scan(client, visitor, theirs["token"]).status_code == 201  # not the registrar's
    # co-registrar duty elsewhere ended; ownership of their own venue stays
    assert client.get(f"/api/venues/{elsewhere['id']}/logbooks",
                      headers=owner["headers"]).status_code == 403
    r = _logbook(client, owner, venue["id"], "新门")
    assert r.status_code == 403 and r.json()["error"] == "registrar_not_green"

    # green again: the revoked logbooks stay revoked; a new one can be applied for
    submit(client, "/api/admin/status-changes",
           {"changes": [change(owner, "green", "解除观察")]})
    run_jobs()
    for book in (first, second, third):
        r = _scan(client, people.make("路人"), book["token"])
        assert r.status_code == 410 and r.json()["error"] == "logbook_revoked"
    fresh = _logbook(client, owner, venue["id"], "新门")
    assert fresh.status_code == 201
    assert _scan(client, visitor, fresh.json()["token"]).status_code == 201


def test_popup_and_red_revoke_too_green_does_not(client, people, run_jobs):
    owners = [people.make(f"登记员{i}") for i in range(3)]
    books = []
    for i, owner in enumerate(owners):
        venue = _venue(client, owner, f"场所{i}")
        books.append(_logbook(client, owner, venue["id"], "门").json())
    submit(client, "/api/admin/status-changes", {"changes": [
        change(owners[0], "popup", "风险地区", popup_kind="risk_area"),
        change(owners[1], "red", "确诊病例密接"),
        change(owners[2], "green", "")]})
    run_jobs()
    visitor = people.make("访客")
    assert _scan(client, visitor, books[0]["token"]).json()["error"] == "logbook_revoked"
    assert _scan(client, visitor, books[1]["token"]).json()["error"] == "logbook_revoked"
    assert _scan(client, visitor, books[2]["token"]).status_code == 201


def test_exposure_revokes_an_exposed_registrar(client, people, run_jobs, venue_with_logbook):
    from datetime import timedelta

    from models.tables import utcnow
    from models.timeutil import iso

    owner, venue, logbook = venue_with_logbook
    assert _scan(client, owner, logbook["token"]).status_code == 201
    now = utcnow()
    submit(client, "/api/admin/exposures", {
        "venue_id": venue["id"], "start": iso(now - timedelta(minutes=5)),
        "end": iso(now + timedelta(minutes=1)), "status": "yellow", "reason": "场所暴露"})
    run_jobs()
    r = _scan(client, people.make("访客"), logbook["token"])
    assert r.status_code == 410 and r.json()["error"] == "logbook_revoked"
