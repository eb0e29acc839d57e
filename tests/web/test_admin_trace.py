"""The trace is unmasked and every call is audited (who, when, what, why); the audit log is
append-only; a citizen sees when their record was traced and by which office."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.conftest import ADMIN


def test_trace_is_unmasked_and_audited(client, people, run_jobs, venue_with_logbook,
                                      officials):
    owner, venue, logbook = venue_with_logbook
    visitor = people.make("欧阳娜娜")
    r = client.post("/api/scan", headers=visitor["headers"], json={"code": logbook["token"]})
    assert r.status_code == 201
    client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": visitor["id_number"], "status": "yellow", "reason": "密接"}]})
    run_jobs()
    tracer = officials.make("tracer", name="王医生", district="朝阳区")
    # Headers the client chose are not the audit's "who" any more.
    headers = {**tracer["headers"], "X-Office": quote("海淀区"), "X-Official": quote("李四")}
    r = client.get(f"/api/admin/trace?id_number={visitor['id_number']}&purpose=流调",
                   headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"  # unmasked: no cache may keep it
    body = r.json()
    assert body["citizen"]["name"] == "欧阳娜娜"
    assert body["citizen"]["id_number"] == visitor["id_number"]  # unmasked
    assert body["citizen"]["status"] == "yellow"
    [checkin] = body["checkins"]
    assert checkin["venue_name"] == "望京SOHO塔1" and checkin["logbook_label"] == "东门"
    assert checkin["venue_id"] == venue["id"] and checkin["status"] == "green"
    assert [h["new_status"] for h in body["status_history"]] == ["yellow"]

    [entry] = client.get("/api/admin/audit?action=trace", headers=ADMIN).json()["items"]
    assert entry["id"] == body["audit_id"] and entry["action"] == "trace"
    assert entry["actor"] == {"kind": "official", "id": tracer["id"], "name": "王医生"}
    assert entry["purpose"] == "流调"
    assert entry["citizen_id"] == visitor["id"] and entry["at"]
    assert entry["detail"]["office"].startswith("朝阳区卫生健康部门")
    assert entry["detail"]["found"] is True and "李四" not in str(entry)
    assert visitor["id_number"] not in str(entry)  # the log itself keeps IDs masked

    seen = client.get("/api/me/traces", headers=visitor["headers"]).json()["items"]
    assert [(s["action"], s["office"], s["purpose"]) for s in seen] == [
        ("trace", "朝阳区卫生健康部门 / 朝阳区 health authority", "流调")]
    assert client.get("/api/me/traces", headers=owner["headers"]).json()["items"] == []


def test_trace_without_purpose_or_match_is_still_audited(client, people):
    from models.idnumber import make_id_number

    person = people.make()
    r = client.get(f"/api/admin/trace?id_number={person['id_number']}", headers=ADMIN)
    assert r.status_code == 200 and r.json()["checkins"] == []
    nobody = make_id_number("440301", __import__("datetime").date(1970, 5, 5), 321)
    r = client.get(f"/api/admin/trace?id_number={nobody}", headers=ADMIN)
    assert r.status_code == 404
    r = client.get("/api/admin/trace?id_number=12345", headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"] == "invalid_id_number"
    items = client.get("/api/admin/audit?action=trace", headers=ADMIN).json()["items"]
    assert [i["detail"]["found"] for i in items] == [False, True]
    assert items[1]["purpose"] == "未说明 / not stated"
    assert items[1]["actor"]["kind"] == "official" and items[1]["actor"]["id"] is not None
    assert client.get(f"/api/admin/trace?id_number={person['id_number']}",
                      headers=person["headers"]).status_code == 403
    assert client.get("/api/admin/audit", headers=person["headers"]).status_code == 403


def test_audit_paging_and_filters(client, people):
    person = people.make()
    for i in range(5):
        client.get(f"/api/admin/trace?id_number={person['id_number']}&purpose=p{i}",
                   headers=ADMIN)
    page = client.get("/api/admin/audit?limit=2", headers=ADMIN).json()
    assert [i["purpose"] for i in page["items"]] == ["p4", "p3"]
    page2 = client.get(f"/api/admin/audit?limit=2&before={page['next_before']}",
                       headers=ADMIN).json()
    assert [i["purpose"] for i in page2["items"]] == ["p2", "p1"]
    mine = client.get(f"/api/admin/audit?citizen_id={person['id']}&action=trace",
                      headers=ADMIN).json()
    assert len(mine["items"]) == 5
    assert client.get("/api/admin/audit?limit=0", headers=ADMIN).status_code == 422


def test_audit_rows_cannot_be_changed(client, people):
    person = people.make()
    client.get(f"/api/admin/trace?id_number={person['id_number']}&purpose=x", headers=ADMIN)
    engine = client.app.state.engine
    with pytest.raises(DBAPIError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(text("UPDATE audit SET purpose = 'rewritten'"))
    if engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM audit"))
    items = client.get("/api/admin/audit?action=trace", headers=ADMIN).json()["items"]
    assert [i["purpose"] for i in items] == ["x"]
