"""The audit trail of each action: done by a named official (or a registrar), it is in the
append-only audit with the authenticated actor {id, name}, the action, the target and the
purpose; the audit filters by actor, action and date and exports masked; citizens see on
their own home page when and by which office their record was traced, and why."""

from __future__ import annotations

import csv
import io
from datetime import date

from sqlalchemy import insert

from models.idnumber import make_id_number
from models.tables import Audit, utcnow
from tests.conftest import ADMIN


def _last(client, action: str) -> dict:
    items = client.get(f"/api/admin/audit?action={action}", headers=ADMIN).json()["items"]
    assert items, f"no audit row for {action}"
    return items[0]


def test_each_officials_action_is_audited_with_its_actor(client, people, officials,
                                                         venue_with_logbook):
    owner, venue, _book = venue_with_logbook
    op = officials.make("operator", name="周operator")
    actor = {"kind": "official", "id": op["id"], "name": "周operator"}
    person = people.make("钱七")
    h = op["headers"]

    r = client.post("/api/admin/status-changes", headers=h, json={"changes": [
        {"id_number": person["id_number"], "status": "yellow", "reason": "密接"}]})
    assert r.status_code == 202
    row = _last(client, "status_changes")
    assert row["actor"] == actor and row["purpose"] == "密接"
    assert row["target"] == f"batch:{r.json()['batch_id']}" and row["detail"]["rows"] == 1

    r = client.post("/api/admin/exposures", headers=h, json={
        "venue_id": venue["id"], "start": "2022-05-01T08:00:00+08:00",
        "end": "2022-05-01T12:00:00+08:00", "status": "yellow", "reason": "同时空"})
    assert r.status_code == 202
    row = _last(client, "exposure")
    assert row["actor"] == actor and row["purpose"] == "同时空"
    assert row["detail"]["venue_id"] == venue["id"]

    r = client.post("/api/admin/violations", headers=h,
                    json={"citizen_id": owner["id"], "reason": "代扫"})
    assert r.status_code == 202
    row = _last(client, "violation")
    assert (row["actor"], row["purpose"], row["citizen_id"]) == (actor, "代扫", owner["id"])
    violation_id = r.json()["violation_id"]
    r = client.post(f"/api/admin/violations/{violation_id}/lift", headers=h,
                    json={"reason": "已整改"})
    assert r.status_code == 202
    row = _last(client, "violation_lift")
    assert (row["actor"], row["purpose"]) == (actor, "已整改")

    assert client.post("/api/admin/notices", headers=h,
                       json={"text": "请配合核酸检测"}).status_code == 201
    row = _last(client, "notice")
    assert row["actor"] == actor and row["purpose"] == "请配合核酸检测"

    number = make_id_number("110105", date(1990, 1, 1), 777)
    r = client.post("/api/admin/citizens", headers=h, json={
        "name": "孙八", "id_number": number, "phone": "13900000001"})
    assert r.status_code == 201, r.text
    row = _last(client, "citizen_create")
    assert row["actor"] == actor and row["citizen_id"] == r.json()["id"]
    assert number not in str(row) and row["target"] == r.json()["id_masked"]


def test_trace_is_audited_and_the_citizen_sees_it_on_their_home_page(client, people,
                                                                     officials):
    person = people.make("欧阳娜娜")
    tracer = officials.make("tracer", name="王医生", district="朝阳区")
    r = client.get("/api/admin/trace", headers=tracer["headers"],
                   params={"id_number": person["id_number"], "purpose": "密接排查"})
    assert r.status_code == 200
    row = _last(client, "trace")
    assert row["actor"] == {"kind": "official", "id": tracer["id"], "name": "王医生"}
    assert row["purpose"] == "密接排查" and row["citizen_id"] == person["id"]

    r = client.post("/login", data={"token": person["token"], "next": "/"},
                    follow_redirects=False)
    assert r.status_code == 303
    home = client.get("/").text
    section = home[home.index('id="my-traces"'):home.index('id="venues-h"')]
    assert "朝阳区卫生健康部门" in section and "密接排查" in section
    assert "王医生" not in section  # the office, not the official's name


def test_registrars_exports_and_deletions_are_audited(client, venue_with_logbook):
    owner, venue, book = venue_with_logbook
    assert client.get(f"/api/logbooks/{book['id']}/export.csv",
                      headers=owner["headers"]).status_code == 200
    row = _last(client, "export")
    assert row["actor"] == {"kind": "citizen", "id": owner["id"], "name": None}
    assert row["target"] == f"logbook:{book['id']}" and row["detail"]["format"] == "csv"
    assert client.delete(f"/api/logbooks/{book['id']}",
                         headers=owner["headers"]).status_code == 204
    row = _last(client, "logbook_delete")
    assert row["actor"]["id"] == owner["id"] and row["detail"]["venue_id"] == venue["id"]


def test_filters_by_actor_action_and_date(client, people, officials):
    person = people.make()
    a, b = officials.make("tracer", name="甲"), officials.make("tracer", name="乙")
    for who in (a, b, a):
        client.get("/api/admin/trace", headers=who["headers"],
                   params={"id_number": person["id_number"], "purpose": who["name"]})
    mine = client.get(f"/api/admin/audit?actor_id={a['id']}&action=trace",
                      headers=ADMIN).json()["items"]
    assert [i["purpose"] for i in mine] == ["甲", "甲"]
    tag = client.get(f"/api/admin/audit?actor=official:{b['id']}", headers=ADMIN).json()
    assert [i["purpose"] for i in tag["items"]] == ["乙"]
    assert client.get("/api/admin/audit?action=trace&until=2020-01-01",
                      headers=ADMIN).json()["items"] == []
    assert len(client.get("/api/admin/audit?action=trace&since=2020-01-01",
                          headers=ADMIN).json()["items"]) == 3
    r = client.get("/api/admin/audit?since=yesterday", headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"] == "validation_error"


def test_export_is_masked_and_audited(client, people, officials):
    person = people.make("诸葛亮")
    tracer = officials.make("tracer", name="李卫")
    client.get("/api/admin/trace", headers=tracer["headers"],
               params={"id_number": person["id_number"], "purpose": "流调"})
    viewer = officials.make("viewer", name="督查员")
    r = client.get("/api/admin/audit/export.csv?action=trace", headers=viewer["headers"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0][:6] == ["id", "at", "actor_kind", "actor_id", "actor_name", "action"]
    [trace] = rows[1:]
    assert trace[4] == "李卫" and trace[5] == "trace" and trace[8] == "流调"
    assert person["id_number"] not in r.text and "诸葛亮" not in r.text
    assert person["id_masked"] in r.text
    row = _last(client, "audit_export")
    assert row["actor"]["name"] == "督查员" and row["detail"]["rows"] == 1


def test_rows_from_before_named_accounts_keep_their_meaning(client, engine):
    with engine.begin() as conn:  # as 0005-era code wrote them
        conn.execute(insert(Audit).values(actor="official:张珊", action="trace", target="11**",
                                          purpose="流调", detail={"official": "张珊"}, at=utcnow()))
        conn.execute(insert(Audit).values(actor="official", action="trace", target="11**",
                                          purpose="旧", at=utcnow()))
    items = client.get("/api/admin/audit?action=trace", headers=ADMIN).json()["items"]
    shared, claimed = items
    assert shared["actor"]["id"] is None and shared["actor"]["legacy"] is True
    assert "共享令牌" in shared["actor"]["name"]
    assert claimed["actor"]["id"] is None and "张珊" in claimed["actor"]["name"]
    assert "未验证" in claimed["actor"]["name"]


def test_the_audit_export_neutralises_formulas_and_drops_control_characters(client, people,
                                                                            officials):
    person = people.make()
    tracer = officials.make("tracer", name="李卫")
    purpose = "=HYPERLINK(\"http://x\")\x07流调"
    r = client.get("/api/admin/trace", headers=tracer["headers"],
                   params={"id_number": person["id_number"], "purpose": purpose})
    assert r.status_code == 200, r.text
    r = client.get("/api/admin/audit/export.csv?action=trace", headers=ADMIN)
    [trace] = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))[1:]
    assert trace[8] == "'=HYPERLINK(\"http://x\")流调"
    assert "\x07" not in r.text
