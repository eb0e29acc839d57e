"""Officials' accounts: created with a token shown once (only its hash stored), listed,
disabled (token and sessions stop at once), rotated; the bootstrap admin; the command line;
and the audit trail of each change."""

from __future__ import annotations

import hashlib

from sqlmodel import Session, select

from models.tables import Official
from tests.conftest import ADMIN
from web import cli


def test_create_list_and_the_token_is_stored_hashed(client, officials):
    made = officials.make("operator", name="王芳", district="朝阳区")
    assert set(made) >= {"id", "name", "role", "district", "token"}
    assert (made["name"], made["role"], made["district"]) == ("王芳", "operator", "朝阳区")
    with Session(client.app.state.engine) as session:
        row = session.get(Official, made["id"])
        assert row.token_hash == hashlib.sha256(made["token"].encode()).hexdigest()
        assert made["token"] not in str(row.model_dump())
    items = client.get("/api/admin/officials", headers=ADMIN).json()["items"]
    mine = next(i for i in items if i["id"] == made["id"])
    assert mine["active"] is True and "token" not in mine
    assert any(i["bootstrap"] and i["role"] == "admin" for i in items)
    assert client.get("/api/admin/me", headers=made["headers"]).json()["name"] == "王芳"


def test_bad_bodies_get_the_error_format(client):
    for body in ({"name": "x", "role": "boss"}, {"role": "viewer"}, {"name": "", "role": "admin"},
                 {"name": "x" * 65, "role": "viewer"}):
        r = client.post("/api/admin/officials", headers=ADMIN, json=body)
        assert r.status_code == 422 and r.json()["error"] == "validation_error", body


def test_disable_stops_the_token_and_the_session_at_once(client, officials):
    made = officials.make("tracer", name="赵六")
    r = client.post("/login", data={"token": made["token"], "next": "/admin"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/api/admin/me").status_code == 200  # the session cookie
    assert client.delete(f"/api/admin/officials/{made['id']}", headers=ADMIN).status_code == 204
    assert client.get("/api/admin/me").status_code == 401
    r = client.get("/api/admin/me", headers=made["headers"])
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
    listed = client.get("/api/admin/officials", headers=ADMIN).json()["items"]
    assert next(i for i in listed if i["id"] == made["id"])["active"] is False
    assert client.delete("/api/admin/officials/999999", headers=ADMIN).status_code == 404
    [entry] = client.get("/api/admin/audit?action=official_disable",
                         headers=ADMIN).json()["items"]
    assert entry["target"] == f"official:{made['id']}" and entry["actor"]["name"]


def test_rotating_a_token_ends_the_old_one(client, officials):
    made = officials.make("viewer")
    r = client.post(f"/api/admin/officials/{made['id']}/token", headers=ADMIN)
    assert r.status_code == 200
    new = r.json()["token"]
    assert new != made["token"]
    assert client.get("/api/admin/me", headers=made["headers"]).status_code == 401
    assert client.get("/api/admin/me",
                      headers={"Authorization": f"Bearer {new}"}).status_code == 200
    actions = [e["action"] for e in client.get("/api/admin/audit", headers=ADMIN).json()["items"]]
    assert "official_token_rotate" in actions and "official_create" in actions


def test_the_bootstrap_admin_cannot_be_disabled_and_nobody_disables_themselves(client,
                                                                               officials):
    me = client.get("/api/admin/me", headers=ADMIN).json()
    assert me["bootstrap"] is True
    r = client.delete(f"/api/admin/officials/{me['id']}", headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    admin = officials.make("admin")
    r = client.delete(f"/api/admin/officials/{admin['id']}", headers=admin["headers"])
    assert r.status_code == 403 and r.json()["error"] == "forbidden"


def test_a_district_admin_manages_only_their_district(client, officials):
    admin = officials.make("admin", district="海淀区")
    r = client.post("/api/admin/officials", headers=admin["headers"],
                    json={"name": "市级", "role": "viewer"})
    assert r.status_code == 403
    r = client.post("/api/admin/officials", headers=admin["headers"],
                    json={"name": "区里", "role": "viewer", "district": "海淀区"})
    assert r.status_code == 201
    other = officials.make("viewer", district="朝阳区")
    assert client.delete(f"/api/admin/officials/{other['id']}",
                         headers=admin["headers"]).status_code == 403
    listed = client.get("/api/admin/officials", headers=admin["headers"]).json()["items"]
    assert {i["district"] for i in listed} == {"海淀区"}


def test_the_command_line_adds_lists_and_disables(client, capsys):
    assert cli.main(["officials", "add", "--name", "孙七", "--role", "tracer",
                     "--district", "东城区"]) == 0
    out = capsys.readouterr().out
    token = out.split("token (shown once): ")[1].strip()
    r = client.get("/api/admin/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["role"] == "tracer"
    official_id = r.json()["id"]
    assert cli.main(["officials", "list"]) == 0
    assert "孙七\ttracer\t东城区\tactive" in capsys.readouterr().out
    assert cli.main(["officials", "disable", str(official_id)]) == 0
    assert client.get("/api/admin/me",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert cli.main(["officials", "disable", "999999"]) == 1
    with Session(client.app.state.engine) as session:
        rows = session.exec(select(Official).where(Official.name == "孙七")).all()
        assert [r.active for r in rows] == [False]
    actions = client.get("/api/admin/audit", headers=ADMIN).json()["items"]
    assert {(a["action"], a["actor"]["kind"]) for a in actions} >= {
        ("official_create", "system"), ("official_disable", "system")}


def test_a_district_officials_wallboard_shows_their_district(client, people, officials,
                                                             venue_with_logbook):
    _owner, _venue, book = venue_with_logbook  # 朝阳区
    other = people.make("吴十")
    r = client.post("/api/venues", headers=other["headers"], json={
        "name": "书店", "address": "中关村", "district": "海淀区", "category": "shop"})
    venue = r.json()
    r = client.post(f"/api/venues/{venue['id']}/logbooks", headers=other["headers"],
                    json={"label": "正门"})
    for visitor, code in ((people.make("甲"), book["token"]), (people.make("乙"),
                                                              r.json()["token"])):
        assert client.post("/api/scan", headers=visitor["headers"],
                           json={"code": code}).status_code == 201
    haidian = officials.make("viewer", district="海淀区")

    def frame(headers) -> dict:
        with client.websocket_connect("/ws/wallboard",
                                      headers={"Authorization": headers["Authorization"]}
                                      ) as ws:
            while True:
                message = ws.receive_json()
                if message["type"] == "crowding" and message["venues"]:
                    return message

    city = frame(ADMIN)
    assert {v["district"] for v in city["venues"]} == {"朝阳区", "海淀区"}
    mine = frame(haidian["headers"])
    assert {v["district"] for v in mine["venues"]} == {"海淀区"}
    assert [d["district"] for d in mine["districts"]] == ["海淀区"]
    assert mine["scope"] == {"district": "海淀区", "totals": "city"}
