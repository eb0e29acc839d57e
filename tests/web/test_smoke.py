from tests.conftest import ADMIN


def test_scan_and_list(client, people, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    visitor = people.make("欧阳娜娜")
    r = client.post("/api/scan", headers=visitor["headers"], json={"code": logbook["token"]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["venue"] == {"id": venue["id"], "name": "望京SOHO塔1"}
    assert body["status"] == "green" and body["alert"] is False
    r2 = client.post("/api/scan", headers=visitor["headers"], json={"code": logbook["token"]})
    assert r2.status_code == 200 and r2.json()["checkin_id"] == body["checkin_id"]
    items = client.get(f"/api/logbooks/{logbook['id']}/checkins", headers=owner["headers"]).json()
    assert [i["name"] for i in items["items"]] == ["欧阳**"]
    assert client.get("/healthz").status_code == 200
    assert client.get(f"/api/logbooks/{logbook['id']}", headers=ADMIN).status_code in (200, 403)
