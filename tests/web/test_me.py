"""The citizen's card explains every state (the itinerary verification: test_itinerary.py);
他人代查 answers only for a matching person, is rate limited and audited."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN


def _change(client, run_jobs, person, status, reason="密接", popup_kind=None):
    row = {"id_number": person["id_number"], "status": status, "reason": reason}
    if popup_kind:
        row["popup_kind"] = popup_kind
    assert client.post("/api/admin/status-changes", headers=ADMIN,
                       json={"changes": [row]}).status_code == 202
    run_jobs()


@pytest.mark.parametrize(("status", "popup_kind", "label", "needle"), [
    ("green", None, "未见异常", "未见异常"),
    ("yellow", None, "居家观察", "社区"),
    ("red", None, "集中观察", "疾控"),
    ("popup", "travel", "弹窗", "继续"),
    ("popup", "risk_area", "弹窗", "社区或单位"),
])
def test_card_explains_every_state(client, people, run_jobs, status, popup_kind, label, needle):
    me = people.make()
    if status != "green":
        _change(client, run_jobs, me, status, popup_kind=popup_kind)
    card = client.get("/api/me", headers=me["headers"]).json()
    assert (card["status"], card["popup_kind"]) == (status, popup_kind)
    assert card["label"]["zh"] == label and needle in card["advice"]["zh"]
    assert card["advice"]["en"] and card["abnormal"] is (status != "green")
    assert set(card) >= {"id", "name_masked", "id_masked", "status", "popup_kind", "reason",
                         "minor", "photo_label"}
    if popup_kind == "travel":
        assert card["action"]["kind"] == "itinerary"
        assert card["action"]["label"]["zh"] == "继续"
        assert card["action"]["url"] == client.app.state.settings.itinerary_url
        assert card["action"]["verify"] == "/api/me/itinerary-verification"
    elif popup_kind == "risk_area":
        assert card["action"]["kind"] == "report"
    else:
        assert card["action"] is None


def test_status_guide_lists_every_state(client):
    items = client.get("/api/status-guide").json()["items"]
    assert {(i["status"], i["popup_kind"]) for i in items} == {
        ("green", None), ("yellow", None), ("red", None), ("popup", "travel"),
        ("popup", "risk_area")}


def test_proxy_check_matches_name_and_id_number(client, people, run_jobs):
    caller, target = people.make("王五"), people.make("欧阳娜娜")
    _change(client, run_jobs, target, "yellow")
    r = client.post("/api/proxy-check", headers=caller["headers"],
                    json={"name": "欧阳娜娜", "id_number": target["id_number"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.pop("at").endswith("+08:00")  # when it was looked up, in Beijing time
    assert body == {"name_masked": "欧阳**", "status": "yellow", "popup_kind": None}
    for body in ({"name": "欧阳娜", "id_number": target["id_number"]},  # wrong name
                 {"name": "欧阳娜娜", "id_number": caller["id_number"]}):  # someone else's ID
        r = client.post("/api/proxy-check", headers=caller["headers"], json=body)
        assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.post("/api/proxy-check", headers=caller["headers"],
                    json={"name": "欧阳娜娜", "id_number": "123"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_id_number"
    assert "18位" in r.json()["message"]
    good = target["id_number"]
    wrong_check = good[:17] + ("0" if good[17] != "0" else "1")
    r = client.post("/api/proxy-check", headers=caller["headers"],
                    json={"name": "欧阳娜娜", "id_number": wrong_check})
    assert r.status_code == 422 and "校验码错误" in r.json()["message"]  # not "18位"
    r = client.post("/api/proxy-check", headers=caller["headers"],
                    json={"name": " ", "id_number": good})
    assert r.status_code == 422 and "姓名不能为空" in r.json()["message"]
    audit = client.get("/api/admin/audit?action=proxy_check", headers=ADMIN).json()["items"]
    assert len(audit) == 3
    assert all(a["actor"] == {"kind": "citizen", "id": caller["id"], "name": None}
               for a in audit)
    assert [a["detail"]["found"] for a in audit] == [False, False, True]
    assert all("*" * 14 in a["target"] for a in audit)  # the audit log stores masked IDs
    seen = client.get("/api/me/traces", headers=target["headers"]).json()["items"]
    assert [(s["action"], s["by"]) for s in seen] == [("proxy_check", "王*")]


def test_proxy_check_is_rate_limited_per_caller(client, people):
    caller, other, target = people.make("王五"), people.make("赵六"), people.make("李四")
    limit = client.app.state.settings.proxy_check_rate_per_min
    body = {"name": "李四", "id_number": target["id_number"]}
    codes = [client.post("/api/proxy-check", headers=caller["headers"], json=body).status_code
             for _ in range(limit + 2)]
    assert codes == [200] * limit + [429, 429]
    r = client.post("/api/proxy-check", headers=caller["headers"], json=body)
    assert r.json()["error"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1
    assert client.post("/api/proxy-check", headers=other["headers"], json=body).status_code == 200
    assert client.post("/api/proxy-check", headers=ADMIN, json=body).status_code == 403
    assert client.post("/api/proxy-check", json=body).status_code == 401


def test_proxy_check_limit_holds_across_processes(client, people, redis_client):
    """The counter lives in Redis: another process's count is this one's."""
    caller, target = people.make("王五"), people.make("李四")
    limit = client.app.state.settings.proxy_check_rate_per_min
    import time

    window = int(time.time() // 60)
    redis_client.set(f"sb:rl:proxy-check:{caller['id']}:{window}", limit)  # another process
    r = client.post("/api/proxy-check", headers=caller["headers"],
                    json={"name": "李四", "id_number": target["id_number"]})
    if int(time.time() // 60) == window:  # not across a minute boundary
        assert r.status_code == 429
