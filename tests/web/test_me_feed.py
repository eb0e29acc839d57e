"""/ws/me: a citizen's status changes and announcements, live, persisted and resumable."""

from __future__ import annotations

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.conftest import ADMIN


def _me_ws(client, person, after=None):
    url = "/ws/me" + (f"?after={after}" if after is not None else "")
    return client.websocket_connect(url, headers=person["headers"])


def _change(client, run_jobs, person, status, reason="密接", popup_kind=None):
    row = {"id_number": person["id_number"], "status": status, "reason": reason}
    if popup_kind:
        row["popup_kind"] = popup_kind
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [row]})
    assert r.status_code == 202
    run_jobs()


def _announce(client, text):
    r = client.post("/api/admin/notices", headers=ADMIN, json={"text": text})
    assert r.status_code == 201, r.text
    return r.json()


def test_live_status_and_announcements(client, people, run_jobs):
    me, other = people.make("张三"), people.make("李四")
    with _me_ws(client, me) as ws, _me_ws(client, other) as ws2:
        assert ws.receive_json() == {"type": "ready", "last_id": 0}
        assert ws2.receive_json()["type"] == "ready"
        _change(client, run_jobs, me, "popup", "行程卡带星", popup_kind="travel")
        event = ws.receive_json()
        assert event["type"] == "status" and event["status"] == "popup"
        assert event["popup_kind"] == "travel" and event["reason"] == "行程卡带星"
        assert set(event) >= {"type", "id", "status", "popup_kind", "reason", "at"}
        assert event["advice"]["zh"] and event["advice"]["en"]
        note = _announce(client, "今日全员核酸")
        assert note["type"] == "notice" and note["text"] == "今日全员核酸"
        got = ws.receive_json()
        assert got == {"type": "notice", "id": note["id"], "text": "今日全员核酸",
                       "at": note["at"]}
        assert got["id"] > event["id"]
        # the other citizen sees the announcement, never my status change
        assert ws2.receive_json()["id"] == note["id"]


def test_resume_after_misses_nothing_and_repeats_nothing(client, people, run_jobs):
    me, other = people.make("张三"), people.make("李四")
    _change(client, run_jobs, me, "yellow")
    first = _announce(client, "通知一")
    _change(client, run_jobs, other, "red")  # not mine: never in my feed
    _change(client, run_jobs, me, "green", reason="解除")
    second = _announce(client, "通知二")
    with _me_ws(client, me, after=0) as ws:
        replay = [ws.receive_json() for _ in range(4)]
        assert [e["type"] for e in replay] == ["status", "notice", "status", "notice"]
        assert [e.get("status") for e in replay] == ["yellow", None, "green", None]
        ids = [e["id"] for e in replay]
        assert ids == sorted(ids) and ids[1] == first["id"] and ids[3] == second["id"]
        assert ws.receive_json() == {"type": "ready", "last_id": second["id"]}
    with _me_ws(client, me, after=ids[1]) as ws:
        assert [ws.receive_json()["id"] for _ in range(2)] == ids[2:]
        assert ws.receive_json()["type"] == "ready"
        third = _announce(client, "通知三")
        assert ws.receive_json()["id"] == third["id"]
    with _me_ws(client, me) as ws:  # no after: from now on
        assert ws.receive_json() == {"type": "ready", "last_id": third["id"]}
    polled = client.get(f"/api/me/notices?after={ids[0]}", headers=me["headers"]).json()
    assert [i["id"] for i in polled["items"]] == [*ids[1:], third["id"]]


@pytest.mark.parametrize(("who", "code"), [("anon", 4401), ("official", 4403),
                                           ("bad_after", 1008)])
def test_close_codes(client, people, who, code):
    headers, url = {}, "/ws/me"
    if who == "official":
        headers = ADMIN
    elif who == "bad_after":
        headers, url = people.make()["headers"], "/ws/me?after=abc"
    with client.websocket_connect(url, headers=headers) as ws:
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
    assert exc.value.code == code


def test_browser_session_cookie_works(client, people, run_jobs):
    me = people.make()
    r = client.post("/login", data={"token": me["token"], "next": "/"}, follow_redirects=False)
    assert r.status_code == 303 and "scanbook_session" in r.cookies
    with client.websocket_connect("/ws/me") as ws:  # the cookie, no Authorization header
        assert ws.receive_json()["type"] == "ready"
        _change(client, run_jobs, me, "yellow")
        assert ws.receive_json()["status"] == "yellow"


def test_announcement_validation_and_listing(client, people):
    assert client.post("/api/admin/notices", headers=ADMIN, json={"text": " "}).status_code == 422
    assert client.post("/api/admin/notices", headers=ADMIN,
                       json={"text": "x" * 2001}).status_code == 422
    citizen = people.make()
    assert client.post("/api/admin/notices", headers=citizen["headers"],
                       json={"text": "hi"}).status_code == 403
    a, b = _announce(client, "一"), _announce(client, "二")
    items = client.get("/api/admin/notices", headers=ADMIN).json()["items"]
    assert [i["id"] for i in items] == [b["id"], a["id"]]
