"""Proxy check-ins (a registrar checks in a visitor without a phone): nobody can claim or
probe an ID number through them. A registered citizen is checked in only when the name and
the ID number are both theirs; anyone else is recorded as an unregistered visitor, with the
same answer whether the name or the number was wrong. Rate limited and audited."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from models.idnumber import make_id_number
from models.tables import Checkin, Citizen, Visitor
from tests.conftest import ADMIN, People, client_with

UNREGISTERED = make_id_number("110105", date(1950, 6, 1), 77)


def _url(logbook: dict) -> str:
    return f"/api/logbooks/{logbook['id']}/proxy-checkins"


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table.__table__)).scalar_one()


def _shape(body: dict) -> dict:
    """An answer without what differs between any two check-ins (ids, time, masks)."""
    return {k: v for k, v in body.items() if k not in ("id", "at", "name", "id_number")}


def test_a_registered_citizen_is_checked_in_when_name_and_number_are_theirs(
        client, people, venue_with_logbook):
    owner, _venue, logbook = venue_with_logbook
    elder = people.make("陈老伯", born=date(1940, 2, 2))
    r = client.post(_url(logbook), headers=owner["headers"],
                    json={"name": "陈老伯", "id_number": elder["id_number"]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["via"] == "proxy" and body["name"] == "陈**" and body["status"] == "green"
    assert body["alert"] is False and body["id_number"] == elder["id_masked"]
    # The same person again within 60 s: the same check-in (200), as for a scan.
    again = client.post(_url(logbook), headers=owner["headers"],
                        json={"name": "陈老伯", "id_number": elder["id_number"]})
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert _count(client.app.state.engine, Visitor) == 0


def test_wrong_name_and_unregistered_number_get_the_same_answer(client, people,
                                                                venue_with_logbook):
    owner, _venue, logbook = venue_with_logbook
    engine = client.app.state.engine
    registered = people.make("王小明")
    citizens = _count(engine, Citizen)
    wrong_name = client.post(_url(logbook), headers=owner["headers"],
                             json={"name": "李小红", "id_number": registered["id_number"]})
    unregistered = client.post(_url(logbook), headers=owner["headers"],
                               json={"name": "李小红", "id_number": UNREGISTERED})
    assert wrong_name.status_code == unregistered.status_code == 201
    assert list(wrong_name.json()) == list(unregistered.json())
    assert _shape(wrong_name.json()) == _shape(unregistered.json())
    assert wrong_name.json()["name"] == unregistered.json()["name"] == "李**"
    assert wrong_name.json()["status"] == "unknown" and wrong_name.json()["alert"] is True
    assert wrong_name.json()["popup_kind"] is None
    # Nobody was created, nothing about the registered citizen leaked into the answer.
    assert _count(engine, Citizen) == citizens
    assert _count(engine, Visitor) == 2
    assert registered["name_masked"] not in wrong_name.text
    # The listing and the export show the visit the same way (masked, status unknown).
    items = client.get(f"/api/logbooks/{logbook['id']}/checkins",
                       headers=owner["headers"]).json()["items"]
    assert [i["status"] for i in items] == ["unknown", "unknown"]
    csv = client.get(f"/api/logbooks/{logbook['id']}/export.csv", headers=owner["headers"])
    assert csv.text.count(",未登记，请人工核验,") == 2 and UNREGISTERED not in csv.text


@pytest.mark.parametrize("body, code", [
    ({"name": "李小红", "id_number": UNREGISTERED[:-1] + ("0" if UNREGISTERED[-1] != "0"
                                                          else "1")}, "invalid_id_number"),
    ({"name": "李小红", "id_number": "123"}, "invalid_id_number"),
    ({"name": " ", "id_number": UNREGISTERED}, "validation_error"),
    ({"id_number": UNREGISTERED}, "validation_error"),
])
def test_a_malformed_request_is_refused_by_its_format(client, venue_with_logbook, body, code):
    owner, _venue, logbook = venue_with_logbook
    r = client.post(_url(logbook), headers=owner["headers"], json=body)
    assert r.status_code == 422 and r.json()["error"] == code, r.text
    assert _count(client.app.state.engine, Visitor) == 0


def test_a_claim_attempt_does_not_block_registration_and_the_visit_becomes_theirs(
        client, venue_with_logbook):
    owner, _venue, logbook = venue_with_logbook
    engine = client.app.state.engine
    claim = client.post(_url(logbook), headers=owner["headers"],
                        json={"name": "冒名者", "id_number": UNREGISTERED})
    real = client.post(_url(logbook), headers=owner["headers"],
                       json={"name": "赵真人", "id_number": UNREGISTERED})
    assert claim.status_code == real.status_code == 201
    # Before anyone registered it, the trace finds the number's visits (no citizen).
    r = client.get("/api/admin/trace", headers=ADMIN, params={"id_number": UNREGISTERED})
    assert r.status_code == 200, r.text
    before = r.json()
    assert before["citizen"] is None and before["status_history"] == []
    assert sorted(v["name"] for v in before["visitors"]) == ["冒名者", "赵真人"]
    assert {v["id_number"] for v in before["visitors"]} == {UNREGISTERED}
    assert sorted(c["visitor"]["name"] for c in before["checkins"]) == ["冒名者", "赵真人"]

    r = client.post("/api/admin/citizens", headers=ADMIN,
                    json={"name": "赵真人", "id_number": UNREGISTERED, "phone": "13900000000"})
    assert r.status_code == 201, r.text
    citizen_id = r.json()["id"]
    with engine.connect() as conn:
        owners = dict(conn.execute(select(Checkin.id, Checkin.citizen_id)).all())
    assert owners == {real.json()["id"]: citizen_id, claim.json()["id"]: None}
    r = client.get("/api/admin/trace", headers=ADMIN, params={"id_number": UNREGISTERED})
    after = r.json()
    assert after["citizen"]["id"] == citizen_id and after["citizen"]["name"] == "赵真人"
    by_id = {c["id"]: c for c in after["checkins"]}
    assert set(by_id) == {real.json()["id"], claim.json()["id"]}
    assert by_id[claim.json()["id"]]["visitor"]["name"] == "冒名者"  # another name: flagged
    linked = {v["name"]: v["citizen_id"] for v in after["visitors"]}
    assert linked == {"赵真人": citizen_id, "冒名者": None}
    # From now on the registered person is checked in as themselves.
    me = client.post(_url(logbook), headers=owner["headers"],
                     json={"name": "赵真人", "id_number": UNREGISTERED})
    assert me.status_code == 200 and me.json()["id"] == real.json()["id"]  # within 60 s


def test_exposures_reach_linked_visits_and_count_unregistered_visitors(
        client, people, run_jobs, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    registered = people.make("孙悟空")
    for body in ({"name": "孙悟空", "id_number": registered["id_number"]},
                 {"name": "某访客", "id_number": UNREGISTERED},
                 {"name": "另一人", "id_number": registered["id_number"]}):
        assert client.post(_url(logbook), headers=owner["headers"], json=body).status_code == 201
    now = datetime.now(UTC)
    r = client.post("/api/admin/exposures", headers=ADMIN, json={
        "venue_id": venue["id"], "start": (now - timedelta(minutes=5)).isoformat(),
        "end": (now + timedelta(minutes=1)).isoformat(), "status": "yellow", "reason": "暴露"})
    assert r.status_code == 202, r.text
    run_jobs()
    result = client.get(f"/api/admin/jobs/{r.json()['job_id']}", headers=ADMIN).json()["result"]
    assert result["applied"] == 1 and result["unregistered"] == 2
    assert client.get("/api/me", headers=registered["headers"]).json()["status"] == "yellow"


def test_every_proxy_checkin_is_audited(client, people, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    elder = people.make("钱老")
    client.post(_url(logbook), headers=owner["headers"],
                json={"name": "钱老", "id_number": elder["id_number"]})
    client.post(_url(logbook), headers=owner["headers"],
                json={"name": "路人", "id_number": UNREGISTERED})
    items = client.get("/api/admin/audit", headers=ADMIN,
                       params={"action": "proxy_checkin"}).json()["items"]
    assert len(items) == 2
    assert {(i["actor"]["kind"], i["actor"]["id"]) for i in items} == {("citizen", owner["id"])}
    found = {i["detail"]["found"]: i for i in items}
    assert found[True]["citizen_id"] == elder["id"] and found[False]["citizen_id"] is None
    assert found[False]["target"] == UNREGISTERED[:2] + "*" * 14 + UNREGISTERED[-2:]
    assert all(i["detail"]["logbook_id"] == logbook["id"] for i in items)
    assert UNREGISTERED not in str(items)
    # The citizen sees that a registrar saw their status (masked), like 他人代查.
    mine = client.get("/api/me/traces", headers=elder["headers"]).json()["items"]
    assert [(m["action"], m["by"]) for m in mine] == [("proxy_checkin", owner["name_masked"])]


def test_only_the_venues_registrars_may_check_in(client, people, venue_with_logbook):
    _owner, _venue, logbook = venue_with_logbook
    stranger = people.make()
    r = client.post(_url(logbook), headers=stranger["headers"],
                    json={"name": "路人", "id_number": UNREGISTERED})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert _count(client.app.state.engine, Visitor) == 0


@pytest.fixture
def tight_client():
    with client_with(proxy_checkin_rate_per_min=3) as c:
        yield c


def test_proxy_checkins_are_rate_limited_per_registrar(tight_client):
    people = People(tight_client)
    owner, other = people.make("李四"), people.make("周五")
    books = []
    for who in (owner, other):
        venue = tight_client.post("/api/venues", headers=who["headers"], json={
            "name": "场所", "address": "某路1号", "district": "朝阳区",
            "category": "office"}).json()
        books.append(tight_client.post(f"/api/venues/{venue['id']}/logbooks",
                                       headers=who["headers"], json={"label": "门"}).json())
    codes = [tight_client.post(_url(books[0]), headers=owner["headers"], json={
        "name": "访客", "id_number": make_id_number("110105", date(1960, 1, 1), n)}).status_code
        for n in range(1, 5)]
    assert codes == [201, 201, 201, 429]
    r = tight_client.post(_url(books[0]), headers=owner["headers"],
                          json={"name": "访客", "id_number": UNREGISTERED})
    assert r.status_code == 429 and r.json()["error"] == "rate_limited"
    assert 1 <= r.json()["retry_after"] <= 60 and r.headers["Retry-After"]
    # Another registrar is not affected.
    r = tight_client.post(_url(books[1]), headers=other["headers"],
                          json={"name": "访客", "id_number": UNREGISTERED})
    assert r.status_code == 201
