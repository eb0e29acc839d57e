"""反扫: a citizen's personal code, scanned by a registrar
(POST /api/logbooks/{id}/visitor-scans)."""

from __future__ import annotations

import time

from models import personal_codes
from tests.conftest import ADMIN


def _code(client, person) -> dict:
    r = client.get("/api/me/code", headers=person["headers"])
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return r.json()


def test_a_registrar_checks_a_visitor_in_by_their_code(client, people, venue_with_logbook,
                                                       run_jobs):
    owner, venue, logbook = venue_with_logbook
    visitor = people.make("欧阳娜娜")
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": visitor["id_number"], "status": "yellow", "reason": "密接"}]})
    assert r.status_code == 202
    run_jobs()
    code = _code(client, visitor)
    assert code["code"].startswith("sbp_") and code["qr"].startswith("data:image/svg+xml;base64,")
    assert code["refresh_seconds"] == 30
    path = f"/api/logbooks/{logbook['id']}/visitor-scans"
    r = client.post(path, headers=owner["headers"], json={"code": code["code"]})
    assert r.status_code == 201, r.text
    checkin = r.json()
    assert (checkin["via"], checkin["status"], checkin["alert"]) == ("registrar_scan", "yellow",
                                                                    True)
    assert checkin["name"] == "欧阳**" and checkin["venue_id"] == venue["id"]
    assert checkin["left_at"] is None
    # the same code again within 60 s: the same check-in
    again = client.post(path, headers=owner["headers"], json={"code": code["code"]})
    assert again.status_code == 200 and again.json()["id"] == checkin["id"]
    # the visitor sees it as their open stay, with the status it was recorded with
    stay = client.get("/api/me/stay", headers=visitor["headers"]).json()
    assert (stay["checkin_id"], stay["via"], stay["status"]) == (checkin["id"],
                                                                "registrar_scan", "yellow")


def test_expired_forged_and_foreign_codes(client, people, venue_with_logbook):
    owner, _venue, logbook = venue_with_logbook
    visitor, stranger = people.make("王五"), people.make("路人")
    path = f"/api/logbooks/{logbook['id']}/visitor-scans"
    secret = client.app.state.settings.secret
    old, _ = personal_codes.make_code(visitor["id"], secret, now=time.time() - 61)
    r = client.post(path, headers=owner["headers"], json={"code": old})
    assert (r.status_code, r.json()["error"]) == (410, "code_expired")
    forged, _ = personal_codes.make_code(visitor["id"], "another-secret-" + "x" * 20,
                                         now=time.time())
    r = client.post(path, headers=owner["headers"], json={"code": forged})
    assert (r.status_code, r.json()["error"]) == (404, "unknown_code")
    r = client.post(path, headers=owner["headers"], json={"code": 123})
    assert (r.status_code, r.json()["error"]) == (404, "unknown_code")
    r = client.post(path, headers=owner["headers"], json={})
    assert (r.status_code, r.json()["error"]) == (404, "unknown_code")
    # only the venue's registrars
    fresh = _code(client, visitor)["code"]
    r = client.post(path, headers=stranger["headers"], json={"code": fresh})
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    assert client.get("/api/me/stay", headers=visitor["headers"]).status_code == 404


def test_a_deleted_logbook_refuses_the_scan(client, people, venue_with_logbook):
    owner, _venue, logbook = venue_with_logbook
    visitor = people.make("王五")
    assert client.delete(f"/api/logbooks/{logbook['id']}",
                         headers=owner["headers"]).status_code == 204
    r = client.post(f"/api/logbooks/{logbook['id']}/visitor-scans", headers=owner["headers"],
                    json={"code": _code(client, visitor)["code"]})
    assert (r.status_code, r.json()["error"]) == (410, "logbook_deleted")
