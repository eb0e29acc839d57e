"""Stays through the API: check-out by the citizen and by a registrar, the next check-in
ending the last, the venue's time limit (computed and written by the expiry job), occupancy on
venues, `left_at` in answers, listings and exports, and the citizen's own visits."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

from sqlalchemy import update

from models.tables import Checkin, utcnow
from tests.workers.helpers import checkin_at


def _scan(client, person, code, status=201) -> dict:
    r = client.post("/api/scan", headers=person["headers"], json={"code": code})
    assert r.status_code == status, r.text
    return r.json()


def _venue(client, owner, name, **extra):
    venue = client.post("/api/venues", headers=owner["headers"], json={
        "name": name, "address": "某路1号", "district": "朝阳区", "category": "shop",
        **extra}).json()
    book = client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                       json={"label": "正门"}).json()
    return venue, book


def _listing(client, owner, logbook) -> dict[int, dict]:
    r = client.get(f"/api/logbooks/{logbook['id']}/checkins", headers=owner["headers"])
    assert r.status_code == 200, r.text
    return {item["id"]: item for item in r.json()["items"]}


def _occupancy(client, owner, venue) -> int:
    r = client.get(f"/api/venues/{venue['id']}", headers=owner["headers"])
    assert r.status_code == 200, r.text
    return r.json()["occupancy"]


def test_checkout_ends_my_open_stay_once(client, people, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    visitor = people.make("王五")
    answer = _scan(client, visitor, logbook["token"])
    assert answer["left_at"] is None
    assert _occupancy(client, owner, venue) == 1

    r = client.post("/api/me/checkout", headers=visitor["headers"], json={})
    assert r.status_code == 200, r.text
    left = r.json()
    assert left["checkin_id"] == answer["checkin_id"]
    assert datetime.fromisoformat(left["left_at"]) >= datetime.fromisoformat(answer["at"])
    assert _listing(client, owner, logbook)[answer["checkin_id"]]["left_at"] == left["left_at"]
    assert _occupancy(client, owner, venue) == 0

    # nothing open any more: 404 in the contract's format; naming the stay answers its end
    r = client.post("/api/me/checkout", headers=visitor["headers"])
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    r = client.post("/api/me/checkout", headers=visitor["headers"],
                    json={"checkin_id": answer["checkin_id"]})
    assert r.status_code == 200 and r.json() == left


def test_checkout_of_someone_elses_stay_is_not_found(client, people, venue_with_logbook):
    _owner, _venue_, logbook = venue_with_logbook
    visitor, other = people.make("王五"), people.make("赵六")
    checkin_id = _scan(client, visitor, logbook["token"])["checkin_id"]
    r = client.post("/api/me/checkout", headers=other["headers"],
                    json={"checkin_id": checkin_id})
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    r = client.post("/api/me/checkout", headers=other["headers"], json={"checkin_id": "1"})
    assert (r.status_code, r.json()["error"]) == (422, "validation_error")
    r = client.post("/api/me/checkout", json={})
    assert r.status_code == 401


def test_a_check_in_elsewhere_ends_the_open_stay_at_that_moment(client, people,
                                                                venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    other, other_book = _venue(client, owner, "隔壁超市")
    visitor = people.make("王五")
    first = _scan(client, visitor, logbook["token"])
    second = _scan(client, visitor, other_book["token"])
    assert _listing(client, owner, logbook)[first["checkin_id"]]["left_at"] == second["at"]
    assert _listing(client, owner, other_book)[second["checkin_id"]]["left_at"] is None
    assert (_occupancy(client, owner, venue), _occupancy(client, owner, other)) == (0, 1)
    r = client.post("/api/me/checkout", headers=visitor["headers"])
    assert r.json()["checkin_id"] == second["checkin_id"]


def test_a_registrar_checks_a_visitor_out(client, people, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    stranger = people.make("路人")
    _elsewhere, elsewhere_book = _venue(client, stranger, "别人的店")
    visitor = people.make("王五")
    checkin_id = _scan(client, visitor, logbook["token"])["checkin_id"]
    path = f"/api/logbooks/{logbook['id']}/checkins/{checkin_id}/checkout"

    r = client.post(path, headers=stranger["headers"])
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    r = client.post(f"/api/logbooks/{elsewhere_book['id']}/checkins/{checkin_id}/checkout",
                    headers=stranger["headers"])
    assert (r.status_code, r.json()["error"]) == (404, "not_found")  # not in that logbook

    r = client.post(path, headers=owner["headers"])
    assert r.status_code == 200, r.text
    assert r.json()["checkin_id"] == checkin_id and r.json()["left_at"]
    assert _occupancy(client, owner, venue) == 0
    again = client.post(path, headers=owner["headers"])
    assert again.status_code == 200 and again.json() == r.json()
    r = client.post("/api/me/checkout", headers=visitor["headers"])
    assert r.status_code == 404


def test_a_stay_nobody_ends_closes_at_the_venues_limit(client, people, run_jobs,
                                                       redis_client):
    owner = people.make("李四")
    venue, book = _venue(client, owner, "快餐店", max_stay_minutes=30)
    assert venue["max_stay_minutes"] == 30
    default, _book = _venue(client, owner, "超市")
    assert default["max_stay_minutes"] == 120  # a shop's default
    engine = client.app.state.engine
    now = utcnow()
    gone, inside = people.make("早到"), people.make("刚到")
    old_id = checkin_at(engine, gone, book, now - timedelta(minutes=31))
    new_id = checkin_at(engine, inside, book, now - timedelta(minutes=29))

    # Computed before any job ran: only the newer stay is open.
    assert _occupancy(client, owner, venue) == 1
    r = client.post("/api/me/checkout", headers=gone["headers"])
    assert r.status_code == 404
    listing = _listing(client, owner, book)
    assert listing[old_id]["left_at"] is None  # not written yet

    from workers.queues import enqueue

    job = enqueue(redis_client, "workers.stays.close_expired")
    run_jobs()
    assert job.get_status(refresh=True) == "finished"
    assert job.return_value() == {"closed": 1}
    listing = _listing(client, owner, book)
    arrived = datetime.fromisoformat(listing[old_id]["at"])
    assert datetime.fromisoformat(listing[old_id]["left_at"]) == arrived + timedelta(minutes=30)
    assert listing[new_id]["left_at"] is None
    # The named stay answers with the departure the limit gave it.
    r = client.post("/api/me/checkout", headers=gone["headers"], json={"checkin_id": old_id})
    assert r.json()["left_at"] == listing[old_id]["left_at"]


def test_checkout_after_the_limit_is_capped_at_it(client, people):
    owner = people.make("李四")
    _venue_, book = _venue(client, owner, "快餐店", max_stay_minutes=30)
    engine = client.app.state.engine
    visitor = people.make("王五")
    checkin_id = checkin_at(engine, visitor, book, utcnow() - timedelta(minutes=45))
    r = client.post("/api/me/checkout", headers=visitor["headers"],
                    json={"checkin_id": checkin_id})
    assert r.status_code == 200
    item = _listing(client, owner, book)[checkin_id]
    assert (datetime.fromisoformat(item["left_at"])
            == datetime.fromisoformat(item["at"]) + timedelta(minutes=30))


def test_max_stay_validation(client, people):
    owner = people.make("李四")
    for bad in (0, 1441, "60", True, 1.5):
        r = client.post("/api/venues", headers=owner["headers"], json={
            "name": "x", "address": "y", "district": "朝阳区", "category": "shop",
            "max_stay_minutes": bad})
        assert (r.status_code, r.json()["error"]) == (422, "validation_error"), bad


def test_my_stay_says_when_the_venue_is_full(client, people):
    owner = people.make("李四")
    venue, book = _venue(client, owner, "小店", capacity=2)
    first, second = people.make("甲"), people.make("乙")
    assert client.get("/api/me/stay", headers=first["headers"]).status_code == 404
    checkin = _scan(client, first, book["token"])
    stay = client.get("/api/me/stay", headers=first["headers"]).json()
    assert stay["checkin_id"] == checkin["checkin_id"] and stay["left_at"] is None
    assert stay["venue"] == {"id": venue["id"], "name": "小店", "occupancy": 1, "capacity": 2,
                             "full": False}
    assert stay["logbook"] == {"id": book["id"], "label": "正门"}
    _scan(client, second, book["token"])
    assert client.get("/api/me/stay", headers=first["headers"]).json()["venue"]["full"] is True
    client.post("/api/me/checkout", headers=second["headers"])
    assert client.get("/api/me/stay", headers=first["headers"]).json()["venue"]["full"] is False
    assert client.get("/api/me/stay", headers=second["headers"]).status_code == 404


def test_venues_list_carries_occupancy_and_full(client, people):
    owner = people.make("李四")
    venue, book = _venue(client, owner, "小店", capacity=2)
    for i in range(2):
        _scan(client, people.make(f"访客{i}"), book["token"])
    [item] = client.get("/api/venues", headers=owner["headers"]).json()["items"]
    assert (item["id"], item["occupancy"], item["capacity"], item["full"]) == (
        venue["id"], 2, 2, True)


def test_export_has_the_departure(client, people, venue_with_logbook):
    owner, _venue_, logbook = venue_with_logbook
    visitor = people.make("王五")
    _scan(client, visitor, logbook["token"])
    left = client.post("/api/me/checkout", headers=visitor["headers"]).json()["left_at"]
    r = client.get(f"/api/logbooks/{logbook['id']}/export.csv", headers=owner["headers"])
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    from web.exports import beijing_time

    assert rows[0][-1] == "离场时间（北京时间）" and rows[1][-1] == beijing_time(left)
    assert rows[1][-1].startswith(left[:10]) and len(rows[1][-1]) == 19


def test_my_checkins_lists_my_visits_of_the_retention_period(client, people,
                                                             venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    other, other_book = _venue(client, owner, "隔壁超市")
    visitor, someone = people.make("王五"), people.make("赵六")
    engine = client.app.state.engine
    old = checkin_at(engine, visitor, logbook, utcnow() - timedelta(days=27))
    first = _scan(client, visitor, logbook["token"])
    second = _scan(client, visitor, other_book["token"])
    _scan(client, someone, logbook["token"])
    # older than the retention period (the purge has not run yet): not shown
    with engine.begin() as conn:
        conn.execute(update(Checkin.__table__).where(Checkin.__table__.c.id == old)
                     .values(at=utcnow() - timedelta(days=29)))

    r = client.get("/api/me/checkins", headers=visitor["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["checkin_id"] for i in body["items"]] == [first["checkin_id"],
                                                       second["checkin_id"]]
    assert body["next_after"] == second["checkin_id"]
    a, b = body["items"]
    assert a["venue"] == {"id": venue["id"], "name": venue["name"]}
    assert a["logbook"] == {"id": logbook["id"], "label": "东门"}
    assert (a["at"], a["left_at"], b["left_at"]) == (first["at"], second["at"], None)

    page = client.get("/api/me/checkins?limit=1", headers=visitor["headers"]).json()
    assert [i["checkin_id"] for i in page["items"]] == [first["checkin_id"]]
    rest = client.get(f"/api/me/checkins?after={page['next_after']}",
                      headers=visitor["headers"]).json()
    assert [i["checkin_id"] for i in rest["items"]] == [second["checkin_id"]]
    assert client.get("/api/me/checkins?limit=0", headers=visitor["headers"]).status_code == 422
    assert other["id"] != venue["id"]


def test_visits_page(client, people):
    from tests.conftest import ADMIN

    r = client.get("/me/visits", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert client.get("/me/visits", headers=ADMIN).status_code == 403
    visitor = people.make("王五")
    r = client.get("/me/visits?lang=en", headers=visitor["headers"])
    assert r.status_code == 200 and "My visits" in r.text and "/static/visits.js" in r.text
