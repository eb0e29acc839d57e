"""Households: dependants added once by name and ID number (a registered citizen only; the
same answer for a wrong name as for an unknown number), then one scan checks in the group."""

from __future__ import annotations

from datetime import date, timedelta

from models.idnumber import make_id_number
from tests.conftest import ADMIN


def _add(client, helper, person, name=None):
    return client.post("/api/me/dependants", headers=helper["headers"], json={
        "name": name or person["name"], "id_number": person["id_number"]})


def test_add_list_remove_and_nobody_claims_an_id_number(client, people):
    parent = people.make("张三丰")
    child = people.make("张小明", born=date.today() - timedelta(days=365 * 8))
    child["name"] = "张小明"
    r = _add(client, parent, child)
    assert r.status_code == 201, r.text
    added = r.json()
    assert (added["name_masked"], added["minor"], added["status"]) == ("张**", True, "green")
    assert "*" * 14 in added["id_masked"]
    assert client.get("/api/me/dependants", headers=parent["headers"]).json()["items"] == [added]
    assert _add(client, parent, child).status_code == 409

    wrong_name = _add(client, parent, child, name="张小红")
    unknown = client.post("/api/me/dependants", headers=parent["headers"], json={
        "name": "李四", "id_number": make_id_number("110101", date(1990, 1, 1), 999)})
    assert wrong_name.status_code == unknown.status_code == 404
    assert wrong_name.json() == unknown.json()  # nothing tells which part was wrong
    bad = client.post("/api/me/dependants", headers=parent["headers"],
                      json={"name": "李四", "id_number": "123"})
    assert (bad.status_code, bad.json()["error"]) == (422, "invalid_id_number")
    parent["name"] = "张三丰"
    assert _add(client, parent, parent).status_code == 422  # not oneself

    stranger = people.make("路人")
    assert client.delete(f"/api/me/dependants/{added['id']}",
                         headers=stranger["headers"]).status_code == 404
    assert client.delete(f"/api/me/dependants/{added['id']}",
                         headers=parent["headers"]).status_code == 204
    assert client.get("/api/me/dependants", headers=parent["headers"]).json()["items"] == []
    audit = client.get("/api/admin/audit?action=add_dependant", headers=ADMIN).json()["items"]
    assert len(audit) >= 3 and all(parent["id_number"] not in str(a) for a in audit)


def test_one_scan_checks_in_the_group_with_each_members_status(client, people, run_jobs,
                                                                venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    parent = people.make("张三丰")
    child = people.make("张小明", born=date.today() - timedelta(days=365 * 8))
    grandma = people.make("王秀英", born=date(1950, 5, 1))
    child["name"], grandma["name"] = "张小明", "王秀英"
    links = [_add(client, parent, p).json()["id"] for p in (child, grandma)]
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": grandma["id_number"], "status": "yellow", "reason": "密接"}]})
    assert r.status_code == 202
    run_jobs()

    with client.websocket_connect(f"/ws/venues/{venue['id']}/feed",
                                  headers=owner["headers"]) as feed:
        assert feed.receive_json()["type"] == "ready"
        r = client.post("/api/scan", headers=parent["headers"],
                        json={"code": logbook["token"], "dependants": links})
        assert r.status_code == 201, r.text
        answer = r.json()
        assert (answer["name_masked"], answer["status"]) == ("张**", "green")
        members = answer["members"]
        assert [(m["name_masked"], m["status"], m["minor"]) for m in members] == [
            ("张**", "green", True), ("王**", "yellow", False)]
        seen = {}
        while len(seen) < 3:
            event = feed.receive_json()
            if event["type"] == "checkin":
                seen[event["id"]] = event
    ids = {answer["checkin_id"], *(m["checkin_id"] for m in members)}
    assert set(seen) == ids
    assert {(e["status"], e["minor"], e["alert"]) for e in seen.values()} == {
        ("green", False, False), ("green", True, False), ("yellow", False, True)}

    # a link that is not the caller's is refused, and nobody is checked in
    other = people.make("路人")
    r = client.post("/api/scan", headers=other["headers"],
                    json={"code": logbook["token"], "dependants": links[:1]})
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    r = client.post("/api/scan", headers=other["headers"],
                    json={"code": logbook["token"], "dependants": "all"})
    assert (r.status_code, r.json()["error"]) == (422, "validation_error")
    # a plain scan (no dependants) answers as always: no members
    plain = client.post("/api/scan", headers=other["headers"], json={"code": logbook["token"]})
    assert plain.status_code == 201 and "members" not in plain.json()
