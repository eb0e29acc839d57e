"""The authorization matrix: every endpoint and WebSocket × anonymous, a plain citizen, the
registrar of another venue, a co-registrar, the owner, and officials of each role (viewer,
operator, tracer; the bootstrap admin) — each with the status (or WebSocket close code) the
contract gives it and, for errors, the contract's error body.

Subjects: venue V (owner + co-registrar) with logbook L; venue W owned by `other`. A row's
expectations are per role; "ok" statuses depend on the endpoint. Roles run in one order
(anonymous … official), so each row's requests are chosen not to change what later roles see
(e.g. every role deletes a logbook of its own).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from models.idnumber import make_id_number
from tests.conftest import ADMIN, People, add_co_registrar
from tests.pushservice import Browser
from web.openapi import DOCUMENT

CITIZEN_ROLES = ("anonymous", "citizen", "other", "co", "owner")
# The ladder (each does what the one before does, and more), then two district operators:
# "district" of venue V's district (朝阳区), "elsewhere" of another (海淀区).
LADDER = ("viewer", "operator", "tracer", "admin")
RUNG = {**{role: n for n, role in enumerate(LADDER)}, "district": 1, "elsewhere": 1}
OFFICIAL_ROLES = (*LADDER, "district", "elsewhere")
ROLES = CITIZEN_ROLES + OFFICIAL_ROLES
DISTRICTS = {"district": "朝阳区", "elsewhere": "海淀区"}


def outside_district(expect: dict, *roles: str) -> dict:
    """The district operators (or those named) get 403: the row acts outside their
    district (models/districts.py)."""
    return {**expect, **dict.fromkeys(roles or DISTRICTS, 403)}
PUSH_SUBSCRIPTION = Browser().subscription("https://fcm.googleapis.com/fcm/send/matrix")
ERROR_CODE = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 409: "conflict"}
READY = "ready"  # a WebSocket that opens and sends {"type": "ready"}


def official_only(ok, least: str = "viewer") -> dict:
    """Officials whose role is `least` or above; lower roles 403, citizens 403."""
    return {"anonymous": 401, "citizen": 403, "other": 403, "co": 403, "owner": 403,
            **{role: ok if RUNG[role] >= RUNG[least] else 403 for role in OFFICIAL_ROLES}}


def officials(ok) -> dict:
    """Every official; citizens 403 (the same as official_only(ok) for the lowest rung)."""
    return official_only(ok)


def citizens(ok) -> dict:
    return {"anonymous": 401, "citizen": ok, "other": ok, "co": ok, "owner": ok,
            **dict.fromkeys(OFFICIAL_ROLES, 403)}


def registrars(ok) -> dict:
    """Only registrars of venue V (co-registrar and owner)."""
    return {**citizens(403), "co": ok, "owner": ok}


def owner_only(ok) -> dict:
    return {**citizens(403), "owner": ok}


def public(ok) -> dict:
    return dict.fromkeys(ROLES, ok)


def unknown_venue() -> dict:
    return {**citizens(404)}


@dataclass
class World:
    headers: dict[str, dict]
    ids: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    method: str
    path: str  # str.format()ted with World.ids and {role}
    expect: dict
    body: dict | None = None
    files: dict | None = None  # a multipart upload instead of a JSON body
    form: dict | None = None  # an HTML form instead of a JSON body

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


def _id_number(seq: int) -> str:
    return make_id_number("110105", date(1990, 1, 1 + seq % 28), 500 + seq)


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (30, 40), (200, 180, 160)).save(out, format="PNG")
    return out.getvalue()


PHOTO = {"photo": ("me.png", _png(), "image/png")}


ROWS = [
    # --- operations and documents: public
    Row("GET", "/healthz", public(200)),
    Row("GET", "/metrics", public(200)),
    Row("GET", "/openapi.json", public(200)),
    Row("GET", "/api/status-guide", public(200)),
    # --- health authority
    Row("POST", "/api/admin/citizens", official_only(201, "operator"),
        {"name": "钱七", "id_number": "{new_id_number_{role}}", "phone": "13900000000"}),
    # the visitor checked in at V (朝阳区) lately: of 朝阳区, not of 海淀区
    Row("POST", "/api/admin/status-changes",
        outside_district(official_only(202, "operator"), "elsewhere"),
        {"changes": [{"id_number": "{visitor_id_number}", "status": "green",
                      "reason": "复核"}]}),
    # the plain citizen was seen nowhere: of no district
    Row("POST", "/api/admin/status-changes",
        outside_district(official_only(202, "operator")),
        {"changes": [{"id_number": "{citizen_id_number}", "status": "green",
                      "reason": "复核"}]}),
    Row("POST", "/api/admin/exposures",
        outside_district(official_only(202, "operator"), "elsewhere"),
        {"venue_id": "{venue}", "start": "2022-05-01T08:00:00+08:00",
         "end": "2022-05-01T12:00:00+08:00", "status": "yellow", "reason": "密接"}),
    Row("POST", "/api/admin/status-changes/preview",
        outside_district(official_only(200, "operator")),
        {"changes": [{"id_number": "{citizen_id_number}", "status": "green",
                      "reason": "复核"}]}),
    Row("POST", "/api/admin/exposures/preview",
        outside_district(official_only(200, "operator"), "elsewhere"),
        {"venue_id": "{venue}", "start": "2022-05-01T08:00:00+08:00",
         "end": "2022-05-01T12:00:00+08:00", "status": "yellow", "reason": "密接"}),
    # `other` registers W in 东城区 only
    Row("POST", "/api/admin/violations", outside_district(official_only(202, "operator")),
        {"citizen_id": "{other_id}", "reason": "代扫"}),
    Row("GET", "/api/admin/violations", officials(200)),
    Row("POST", "/api/admin/violations/{violation_a_{role}}/lift",
        outside_district(official_only(202, "operator"))),
    Row("DELETE", "/api/admin/violations/{violation_b_{role}}",
        outside_district(official_only(202, "operator"))),
    # a city-level official's job and batch; then one of 朝阳区's
    Row("GET", "/api/admin/jobs/{job}", outside_district(officials(200))),
    Row("POST", "/api/admin/jobs/{job}/undo",  # a violation's: not undoable
        outside_district(official_only(409, "operator"))),
    Row("GET", "/api/admin/batches/{batch}", outside_district(officials(200))),
    Row("GET", "/api/admin/jobs/{district_job}",
        outside_district(officials(200), "elsewhere")),
    Row("GET", "/api/admin/batches/{district_batch}",
        outside_district(officials(200), "elsewhere")),
    Row("GET", "/api/admin/trace?id_number={citizen_id_number}&purpose=流调",
        official_only(200, "tracer")),
    Row("GET", "/api/admin/audit", officials(200)),
    Row("GET", "/api/admin/audit/export.csv", officials(200)),
    Row("POST", "/api/admin/notices", official_only(201, "operator"), {"text": "请配合核酸检测"}),
    Row("GET", "/api/admin/notices", officials(200)),
    Row("GET", "/api/admin/messages", officials(200)),
    Row("POST", "/api/admin/messages/{message}/replies", official_only(201, "operator"),
        {"text": "已转社区处理"}),
    Row("POST", "/api/admin/messages/{message}/handled", official_only(200, "operator"),
        {"handled": True}),
    # --- officials' accounts: admins only
    Row("POST", "/api/admin/officials", official_only(201, "admin"),
        {"name": "新同事{role}", "role": "viewer"}),
    Row("GET", "/api/admin/officials", official_only(200, "admin")),
    Row("DELETE", "/api/admin/officials/{doomed_official_{role}}", official_only(204, "admin")),
    Row("POST", "/api/admin/officials/{rotated_official}/token", official_only(200, "admin")),
    Row("GET", "/api/admin/me", officials(200)),
    # --- officials' sign-in with password and authenticator code: nobody has these
    Row("POST", "/api/auth/official", public(401),
        {"login": "nobody-{role}", "password": "wrong-password", "code": "000000"}),
    Row("POST", "/login/official", public(401),
        form={"login": "nobody-{role}", "password": "wrong-password", "code": "000000"}),
    # --- the console's officials page and my account (HTML forms)
    Row("GET", "/admin/officials", {**official_only(200, "admin"), "anonymous": 303}),
    Row("POST", "/admin/officials", {**official_only(201, "admin"), "anonymous": 303},
        form={"name": "表单{role}", "role": "viewer"}),
    Row("POST", "/admin/officials/{doomed_official_{role}}/disable",
        {**official_only(303, "admin"), "anonymous": 303}),
    Row("POST", "/admin/officials/{rotated_official}/token",
        {**official_only(200, "admin"), "anonymous": 303}),
    Row("GET", "/admin/account", {**officials(200), "anonymous": 303}),
    Row("POST", "/admin/account/credentials", {**officials(200), "anonymous": 303},
        form={"password": "a-long-password", "password2": "a-long-password"}),
    Row("POST", "/admin/account/confirm", {**officials(422), "anonymous": 303},
        form={"code": "000000"}),  # no authenticator was set up in this world
    # --- registrars
    Row("POST", "/api/venues", citizens(201),
        {"name": "便利店", "address": "建国路1号", "district": "朝阳区", "category": "shop"}),
    Row("GET", "/api/venues", citizens(200)),
    Row("GET", "/api/venues/{venue}", registrars(200)),
    Row("GET", "/api/venues/999999", unknown_venue()),
    Row("POST", "/api/venues/{venue}/registrars", owner_only(201),
        {"citizen_id": "{newcomer_{role}}"}),
    Row("GET", "/api/venues/{venue}/registrars", registrars(200)),
    Row("DELETE", "/api/venues/{venue}/registrars/{invitee_{role}}",
        {**citizens(403), "owner": 204}),  # withdraws a pending invitation
    Row("GET", "/api/me/invitations", citizens(200)),
    Row("POST", "/api/invitations/{invitation_accept}/accept",
        {**citizens(404), "citizen": 200}),  # only the invitee (others: not found)
    Row("POST", "/api/invitations/{invitation_decline}/decline",
        {**citizens(404), "citizen": 200}),
    Row("POST", "/api/venues/{venue}/logbooks", registrars(201), {"label": "西门"}),
    Row("GET", "/api/venues/{venue}/logbooks", registrars(200)),
    Row("GET", "/api/venues/999999/logbooks", unknown_venue()),
    Row("GET", "/api/logbooks/{logbook}", registrars(200)),
    Row("GET", "/api/logbooks/999999", unknown_venue()),
    Row("DELETE", "/api/logbooks/{doomed_{role}}", registrars(204)),
    Row("GET", "/api/logbooks/{logbook}/checkins?after=0&limit=10", registrars(200)),
    Row("GET", "/api/logbooks/{logbook}/export.csv", registrars(200)),
    Row("GET", "/api/logbooks/{logbook}/export.xlsx", registrars(200)),
    Row("POST", "/api/logbooks/{logbook}/proxy-checkins", registrars({200, 201}),
        {"name": "孙八", "id_number": _id_number(2)}),
    Row("POST", "/api/logbooks/{logbook}/checkins/{visit}/checkout", registrars(200)),
    Row("POST", "/api/logbooks/{logbook}/visitor-scans", registrars({200, 201}),
        {"code": "{personal_code}"}),
    # --- citizens
    Row("GET", "/api/me", citizens(200)),
    Row("GET", "/api/me/notices", citizens(200)),
    Row("GET", "/api/me/traces", citizens(200)),
    Row("GET", "/api/me/messages", citizens(200)),
    Row("POST", "/api/messages/{message_{role}}/replies", citizens(201), {"text": "谢谢"}),
    Row("POST", "/api/me/sign-out-everywhere", citizens(200)),
    Row("GET", "/api/me/checkins", citizens(200)),
    Row("GET", "/api/me/code", citizens(200)),
    Row("GET", "/api/me/dependants", citizens(200)),
    # a name that is not the visitor's: the same 404 for everyone
    Row("POST", "/api/me/dependants", citizens(404),
        {"name": "不是他", "id_number": "{visitor_id_number}"}),
    Row("DELETE", "/api/me/dependants/999999", citizens(404)),
    # Web Push: one browser's subscription, taken over by each citizen role in turn
    Row("GET", "/api/push/key", public(200)),
    Row("GET", "/api/me/push-subscriptions", citizens(200)),
    Row("POST", "/api/me/push-subscriptions", citizens({200, 201}), PUSH_SUBSCRIPTION),
    Row("DELETE", "/api/me/push-subscriptions/999999", citizens(404)),
    # none of them is inside anywhere, and the visit is the visitor's (tests/web/test_stays.py
    # has the owner's own answers)
    Row("GET", "/api/me/stay", citizens(404)),
    Row("POST", "/api/me/checkout", citizens(404), {"checkin_id": "{visit}"}),
    Row("POST", "/api/me/itinerary-verification", citizens(409), {"result": "passed"}),
    # Only the itinerary platform's signature opens it: no role's credentials do.
    Row("POST", "/api/itinerary/callback", public(401),
        {"id_number": "{citizen_id_number}", "result": "passed", "reference": "R-1",
         "at": "2026-12-06T19:00:00+08:00"}),
    Row("POST", "/api/proxy-check", citizens(200),
        {"name": "张三丰", "id_number": "{citizen_id_number}"}),
    Row("POST", "/api/scan", citizens({200, 201}), {"code": "{code}"}),
    Row("POST", "/api/messages", citizens(201), {"text": "门口排队太长"}),
    Row("POST", "/api/me/photo", citizens(201), files=PHOTO),
    Row("GET", "/api/me/photo", citizens(404)),  # none uploaded in this world
    Row("GET", "/api/logbooks/{logbook}/rotating-code", registrars(200)),
    # --- sign-in by SMS code: public; no code was sent, so verifying fails for everyone
    Row("POST", "/api/auth/otp", public(202), {"phone": "{phone_{role}}"}),
    Row("POST", "/api/auth/verify", public(401), {"phone": "{phone_{role}}", "code": "123456"}),
    # --- pages
    Row("GET", "/", public(200)),
    Row("GET", "/login", public(200)),
    Row("GET", "/logout", public(303)),
    Row("POST", "/logout", public(303)),
    Row("POST", "/login", {**public(303)}, None),  # a form: see _call
    Row("GET", "/s/{code}", public(200)),
    Row("GET", "/logbooks/{logbook}/qr.png", registrars(200)),
    Row("GET", "/logbooks/{logbook}/qr.svg", registrars(200)),
    Row("GET", "/logbooks/{logbook}/poster", {**registrars(200), "anonymous": 303}),
    Row("GET", "/venues/{venue}/live", {**registrars(200), "anonymous": 303}),
    Row("GET", "/console", {**citizens(200), "anonymous": 303,
                            **dict.fromkeys(OFFICIAL_ROLES, 303)}),
    Row("GET", "/me/visits", {**citizens(200), "anonymous": 303}),
    Row("GET", "/me/code", {**citizens(200), "anonymous": 303}),
    Row("GET", "/me/household", {**citizens(200), "anonymous": 303}),
    Row("GET", "/offline/scan", public(200)),
    Row("GET", "/sw.js", public(200)),
    Row("GET", "/manifest.webmanifest", public(200)),
    Row("GET", "/venues/{venue}", {**registrars(200), "anonymous": 303}),
    Row("GET", "/logbooks/{logbook}/display", {**registrars(200), "anonymous": 303}),
    # --- the officials' console and the wallboard: signed out → sign in, citizens and roles
    # below what the page drives (the API's rule) → the 403 page
    *[Row("GET", path, {**official_only(200, least), "anonymous": 303})
      for path, least in (("/admin", "viewer"), ("/admin/status-changes", "operator"),
                          ("/admin/exposures", "operator"), ("/admin/jobs", "viewer"),
                          ("/admin/trace", "tracer"), ("/admin/audit", "viewer"),
                          ("/admin/violations", "viewer"), ("/admin/notices", "viewer"),
                          ("/admin/messages", "viewer"), ("/wallboard", "viewer"))],
    # a city-level job's page: no such job for a district's officials
    Row("GET", "/admin/jobs/{job}", {**official_only(200), "anonymous": 303,
                                     **dict.fromkeys(DISTRICTS, 404)}),
    # --- WebSockets (READY or the close code)
    Row("WS", "/ws/venues/{venue}/feed", {**registrars(READY), "anonymous": 4401,
                                          "citizen": 4403, "other": 4403,
                                          **dict.fromkeys(OFFICIAL_ROLES, READY),
                                          "elsewhere": 4403}),
    Row("WS", "/ws/venues/999999/feed", {**public(4404), "anonymous": 4401}),
    Row("WS", "/ws/me", {**citizens(READY), "anonymous": 4401,
                         **dict.fromkeys(OFFICIAL_ROLES, 4403)}),
    Row("WS", "/ws/wallboard", {**official_only("crowding"), "anonymous": 4401,
                                **dict.fromkeys(("citizen", "other", "co", "owner"), 4403)}),
]


@pytest.fixture
def world(client: TestClient, people: People, venue_with_logbook) -> World:
    owner, venue, book = venue_with_logbook
    co, other, plain = people.make("周九"), people.make("吴十"), people.make("张三丰")
    add_co_registrar(client, owner, venue["id"], co)
    r = client.post("/api/venues", headers=other["headers"], json={
        "name": "书店", "address": "鼓楼大街", "district": "东城区", "category": "shop"})
    assert r.status_code == 201, r.text
    world = World(headers={"anonymous": {}, "citizen": plain["headers"],
                           "other": other["headers"], "co": co["headers"],
                           "owner": owner["headers"], "admin": ADMIN})
    for role in ("viewer", "operator", "tracer", "district", "elsewhere"):
        r = client.post("/api/admin/officials", headers=ADMIN,
                        json={"name": f"{role}官员", "role": role if role in RUNG and role
                              in LADDER else "operator", "district": DISTRICTS.get(role)})
        assert r.status_code == 201, r.text
        world.headers[role] = {"Authorization": f"Bearer {r.json()['token']}"}
    ids = world.ids
    visitor = people.make("王五")
    r = client.post("/api/scan", headers=visitor["headers"], json={"code": book["token"]})
    assert r.status_code == 201, r.text
    ids.update(venue=venue["id"], logbook=book["id"], code=book["token"],
               other_id=other["id"], citizen_id_number=plain["id_number"],
               visitor_id_number=visitor["id_number"])
    # the visitor's stay at V (the plain citizen must stay of no district: see above)
    stay = client.get("/api/me/stay", headers=visitor["headers"]).json()
    ids.update(visit=stay["checkin_id"],
               personal_code=client.get("/api/me/code",
                                        headers=visitor["headers"]).json()["code"])
    r = client.post("/api/admin/exposures", headers=world.headers["district"], json={
        "venue_id": venue["id"], "start": "2022-05-01T08:00:00+08:00",
        "end": "2022-05-01T12:00:00+08:00", "status": "yellow", "reason": "密接"})
    assert r.status_code == 202, r.text
    ids["district_job"], ids["district_batch"] = r.json()["job_id"], r.json()["batch_id"]
    for role in ROLES:
        r = client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                        json={"label": f"待删{role}"})
        ids[f"doomed_{role}"] = r.json()["id"]
        ids[f"newcomer_{role}"] = people.make("郑十一")["id"]
        ids[f"phone_{role}"] = f"1390000{ROLES.index(role):04d}"  # one code a minute each
        ids[f"invitee_{role}"] = 1000 + ROLES.index(role)  # pending invitations, anyone's
        r = client.post(f"/api/venues/{venue['id']}/registrars", headers=owner["headers"],
                        json={"citizen_id": ids[f"invitee_{role}"]})
        assert r.status_code == 201, r.text
        # A 留言 of each citizen's own (the others' and signed-out callers' name plain's).
        writer = world.headers[role] if role in ("citizen", "other", "co", "owner") else \
            plain["headers"]
        r = client.post("/api/messages", headers=writer, json={"text": f"留言{role}"})
        assert r.status_code == 201, r.text
        ids[f"message_{role}"] = r.json()["id"]
    for name, inviter, where in (("invitation_accept", owner, venue["id"]),
                                 ("invitation_decline", other, None)):
        if where is None:
            where = client.get("/api/venues", headers=other["headers"]).json()["items"][0]["id"]
        r = client.post(f"/api/venues/{where}/registrars", headers=inviter["headers"],
                        json={"citizen_id": plain["id"]})
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    ids["message"] = ids["message_citizen"]
    for role in ROLES:
        ids[f"new_id_number_{role}"] = _id_number(100 + ROLES.index(role))
        for name in ("violation_a", "violation_b"):
            r = client.post("/api/admin/violations", headers=ADMIN,
                            json={"citizen_id": other["id"], "reason": "测试"})
            assert r.status_code == 202, r.text
            ids[f"{name}_{role}"] = r.json()["violation_id"]
            ids["job"], ids["batch"] = r.json()["job_id"], r.json()["batch_id"]
        r = client.post("/api/admin/officials", headers=ADMIN,
                        json={"name": f"待停用{role}", "role": "viewer"})
        ids[f"doomed_official_{role}"] = r.json()["id"]
    r = client.post("/api/admin/officials", headers=ADMIN,
                    json={"name": "换令牌", "role": "viewer"})
    ids["rotated_official"] = r.json()["id"]
    return world


def _fill(value, ids: dict, role: str):
    """Format {names} in a path or body; a body value that is exactly "{name}" keeps its
    type (ids are integers)."""
    if isinstance(value, dict):
        return {k: _fill(v, ids, role) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids, role) for v in value]
    if isinstance(value, str) and "{" in value:
        value = value.replace("{role}", role)
        if value.startswith("{") and value.endswith("}") and value.count("{") == 1:
            return ids[value[1:-1]]
        return value.format(**ids)
    return value


def _call(client: TestClient, row: Row, world: World, role: str):
    path = _fill(row.path, world.ids, role)
    headers = world.headers[role]
    if row.method == "WS":
        try:
            with client.websocket_connect(path, headers=headers) as ws:
                message = ws.receive_json()
                return message["type"], None
        except WebSocketDisconnect as closed:
            return closed.code, None
    if row.method == "POST" and row.path == "/login":
        # The sign-in form with the role's own token (none when anonymous).
        token = headers.get("Authorization", " ").split(" ", 1)[1]
        r = client.post("/login", data={"token": token}, follow_redirects=False)
        client.cookies.clear()
        return r.status_code, r
    body = _fill(row.body, world.ids, role) if row.body is not None else None
    if row.form is not None:
        r = client.request(row.method, path, headers=headers,
                           data=_fill(row.form, world.ids, role), follow_redirects=False)
        return r.status_code, r
    r = client.request(row.method, path, headers=headers, json=body, files=row.files,
                       follow_redirects=False)
    return r.status_code, r


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.label)
def test_authorization(client, world, row):
    outcome = {}
    for role in ROLES:
        got, response = _call(client, row, world, role)
        want = row.expect[role]
        ok = got in want if isinstance(want, set) else got == want
        outcome[role] = got
        assert ok, f"{row.label} as {role}: {got}, expected {want}" + (
            f": {response.text[:300]}" if response is not None else "")
        if response is not None and got >= 400:
            if response.headers["content-type"].startswith("application/json"):
                body = response.json()
                assert set(body) >= {"error", "message"}, body
                assert body["error"] == ERROR_CODE[got], (role, body)
            else:  # the pages answer people with HTML error pages
                assert row.path.startswith(("/logbooks/", "/venues/", "/admin", "/wallboard",
                                            "/login/", "/me/")), row.label
                assert response.headers["content-type"].startswith("text/html")


def test_every_documented_operation_is_in_the_matrix():
    covered = {(r.method, r.path.split("?")[0]) for r in ROWS if r.method != "WS"}

    def shape(path: str) -> str:
        return "/".join("{}" if "{" in part or part.isdigit() else part
                        for part in path.split("/"))

    covered_shapes = {(m, shape(p)) for m, p in covered}
    missing = [f"{m.upper()} {p}" for p, item in DOCUMENT["paths"].items() for m in item
               if (m.upper(), shape(p)) not in covered_shapes]
    assert not missing, f"add rows for: {missing}"
    sockets = {shape(r.path) for r in ROWS if r.method == "WS"}
    assert {shape(p) for p in DOCUMENT["x-websockets"]["paths"]} <= sockets
