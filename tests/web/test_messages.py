"""留言栏 as a conversation through the real app: a citizen writes, an official replies (and
the message is handled), the citizen reads the reply and answers (open again), officials
filter by handled, every official write is audited, nobody reads another's conversation."""

from __future__ import annotations

from tests.conftest import ADMIN


def test_a_message_becomes_a_conversation(client, people, officials):
    citizen, stranger = people.make("张三丰"), people.make("李四")
    r = client.post("/api/messages", headers=citizen["headers"], json={"text": "  门口排队太长  "})
    assert r.status_code == 201, r.text
    message = r.json()
    assert message["text"] == "门口排队太长" and message["handled"] is False
    assert message["replies"] == [] and message["at"].endswith("+08:00")
    mid = message["id"]

    waiting = client.get("/api/admin/messages?handled=false", headers=ADMIN).json()["items"]
    assert [m["id"] for m in waiting] == [mid]
    assert waiting[0]["name_masked"] == "张**" and citizen["id_number"] not in str(waiting)

    doctor = officials.make("operator", name="王医生")  # the audit names who answered
    r = client.post(f"/api/admin/messages/{mid}/replies", headers=doctor["headers"],
                    json={"text": "已联系场所增加扫码点"})
    assert r.status_code == 201, r.text
    answered = r.json()
    assert answered["handled"] is True and answered["handled_at"]
    assert [(x["from"], x["text"]) for x in answered["replies"]] == [
        ("official", "已联系场所增加扫码点")]
    assert client.get("/api/admin/messages?handled=false", headers=ADMIN).json()["items"] == []
    handled = client.get("/api/admin/messages?handled=true", headers=ADMIN).json()["items"]
    assert handled[0]["handled_by"] == f"official:{doctor['id']}"

    # The citizen sees the reply in their 留言栏; a stranger sees nothing of it.
    mine = client.get("/api/me/messages", headers=citizen["headers"]).json()["items"]
    assert mine[0]["id"] == mid and mine[0]["handled"] is True
    assert mine[0]["replies"][0]["text"] == "已联系场所增加扫码点"
    assert "handled_by" not in mine[0]  # which official: not the citizen's business
    assert client.get("/api/me/messages", headers=stranger["headers"]).json()["items"] == []
    r = client.post(f"/api/messages/{mid}/replies", headers=stranger["headers"],
                    json={"text": "插话"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"

    # The citizen answers: the conversation waits for an official again.
    r = client.post(f"/api/messages/{mid}/replies", headers=citizen["headers"],
                    json={"text": "谢谢，今天好多了"})
    assert r.status_code == 201 and r.json()["from"] == "citizen"
    again = client.get("/api/admin/messages?handled=false", headers=ADMIN).json()["items"]
    assert [m["id"] for m in again] == [mid]
    assert [x["from"] for x in again[0]["replies"]] == ["official", "citizen"]

    # Marked handled without a reply, then opened again.
    r = client.post(f"/api/admin/messages/{mid}/handled", headers=ADMIN, json={"handled": True})
    assert r.status_code == 200 and r.json()["handled"] is True
    r = client.post(f"/api/admin/messages/{mid}/handled", headers=ADMIN,
                    json={"handled": False})
    assert r.status_code == 200 and r.json()["handled"] is False and r.json()["handled_at"] is None
    # A reply that leaves it open.
    r = client.post(f"/api/admin/messages/{mid}/replies", headers=ADMIN,
                    json={"text": "请留意后续通知", "handled": False})
    assert r.status_code == 201 and r.json()["handled"] is False

    audit = client.get("/api/admin/audit", headers=ADMIN).json()["items"]
    actions = [a["action"] for a in audit if a["target"] == f"message:{mid}"]
    assert sorted(actions) == ["message_handled", "message_handled", "message_reply",
                               "message_reply"]


def test_bad_replies_get_the_error_format(client, people):
    citizen = people.make()
    mid = client.post("/api/messages", headers=citizen["headers"],
                      json={"text": "问"}).json()["id"]
    for path, body in [(f"/api/admin/messages/{mid}/replies", {"text": ""}),
                       (f"/api/admin/messages/{mid}/replies", {"text": "x" * 2001}),
                       (f"/api/admin/messages/{mid}/replies", {"text": "好", "handled": "yes"}),
                       (f"/api/admin/messages/{mid}/handled", {}),
                       ("/api/admin/messages?handled=maybe", None)]:
        r = client.request("GET" if body is None else "POST", path, headers=ADMIN, json=body)
        assert r.status_code == 422 and r.json()["error"] == "validation_error", (path, r.text)
    r = client.post("/api/admin/messages/999999/replies", headers=ADMIN, json={"text": "好"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.post(f"/api/messages/{mid}/replies", headers=citizen["headers"], json={})
    assert r.status_code == 422 and r.json()["error"] == "validation_error"
