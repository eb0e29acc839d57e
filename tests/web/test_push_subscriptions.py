"""Web Push subscriptions (docs/push.md): the public VAPID key, a citizen's browsers
subscribing (checked: a push service's https URL, real P-256 keys), moving between citizens,
several devices, unsubscribing."""

from __future__ import annotations

import base64

import pytest

from models.errors import ValidationFailed
from models.push import MAX_PER_CITIZEN, clean_subscription
from models.settings import PUSH_HOSTS
from tests.conftest import ADMIN
from tests.pushservice import Browser

FCM = "https://fcm.googleapis.com/fcm/send/abc123"
PATH = "/api/me/push-subscriptions"


def test_the_public_key_is_served_to_anyone(client):
    r = client.get("/api/push/key")
    assert r.status_code == 200
    key = r.json()["public_key"]
    raw = base64.urlsafe_b64decode(key + "=")
    assert len(raw) == 65 and raw[0] == 4  # an uncompressed P-256 point
    assert client.get("/api/push/key").json()["public_key"] == key


def test_subscribe_list_and_unsubscribe(client, people):
    me = people.make()
    phone, laptop = Browser().subscription(FCM), Browser().subscription(
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAA")
    r = client.post(PATH, headers=me["headers"], json=phone)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["endpoint"] == FCM
    again = client.post(PATH, headers=me["headers"], json=phone)  # the page syncs on load
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert client.post(PATH, headers=me["headers"], json=laptop).status_code == 201
    items = client.get(PATH, headers=me["headers"]).json()["items"]
    assert [i["endpoint"] for i in items] == [FCM, laptop["endpoint"]]

    other = people.make("李四")
    assert client.delete(f"{PATH}/{first['id']}", headers=other["headers"]).status_code == 404
    assert client.delete(f"{PATH}/{first['id']}", headers=me["headers"]).status_code == 204
    assert client.delete(f"{PATH}/{first['id']}", headers=me["headers"]).status_code == 404
    assert [i["endpoint"] for i in client.get(PATH, headers=me["headers"]).json()["items"]] \
        == [laptop["endpoint"]]


def test_a_browser_moves_to_whoever_signed_in_last(client, people):
    first, second = people.make(), people.make("李四")
    sub = Browser().subscription(FCM)
    assert client.post(PATH, headers=first["headers"], json=sub).status_code == 201
    assert client.post(PATH, headers=second["headers"], json=sub).status_code == 200
    assert client.get(PATH, headers=first["headers"]).json()["items"] == []
    assert len(client.get(PATH, headers=second["headers"]).json()["items"]) == 1


def test_the_newest_devices_are_kept(client, people):
    me = people.make()
    for n in range(MAX_PER_CITIZEN + 2):
        sub = Browser().subscription(f"{FCM}-{n}")
        assert client.post(PATH, headers=me["headers"], json=sub).status_code == 201
    items = client.get(PATH, headers=me["headers"]).json()["items"]
    assert [i["endpoint"] for i in items] == [f"{FCM}-{n}" for n in range(2, 12)]


def test_only_signed_in_citizens_subscribe(client):
    sub = Browser().subscription(FCM)
    assert client.post(PATH, json=sub).status_code == 401
    assert client.post(PATH, headers=ADMIN, json=sub).status_code == 403


def _bad(client, person, body) -> str:
    r = client.post(PATH, headers=person["headers"], json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "validation_error"
    return r.json()["message"]


def test_bad_subscriptions_are_refused_with_a_reason(client, people):
    me = people.make()
    good = Browser().subscription(FCM)
    keys = good["keys"]
    assert "endpoint" in _bad(client, me, {"keys": keys})
    assert "https" in _bad(client, me, {**good, "endpoint": "http://fcm.googleapis.com/x"})
    assert "push service" in _bad(client, me, {**good, "endpoint": "https://10.0.0.7/x"})
    assert "push service" in _bad(client, me, {**good,
                                               "endpoint": "https://fcm.googleapis.com.evil.cn/"})
    assert "URL" in _bad(client, me, {**good, "endpoint": "https://u:p@fcm.googleapis.com/x"})
    assert "2048" in _bad(client, me, {**good, "endpoint": FCM + "x" * 2048})
    assert "keys" in _bad(client, me, {"endpoint": FCM})
    assert "p256dh" in _bad(client, me, {**good, "keys": {**keys, "p256dh": "abc"}})
    off_curve = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).decode().rstrip("=")
    assert "P-256" in _bad(client, me, {**good, "keys": {**keys, "p256dh": off_curve}})
    assert "auth" in _bad(client, me, {**good, "keys": {**keys, "auth": "AAAA"}})
    assert "auth" in _bad(client, me, {**good, "keys": {"p256dh": keys["p256dh"]}})
    assert client.get(PATH, headers=me["headers"]).json()["items"] == []


def test_a_local_endpoint_only_outside_production():
    local = Browser().subscription("http://127.0.0.1:9999/push/x")
    assert clean_subscription(local, hosts=PUSH_HOSTS, production=False).endpoint \
        == local["endpoint"]
    with pytest.raises(ValidationFailed):
        clean_subscription(local, hosts=PUSH_HOSTS, production=True)
    apple = Browser().subscription("https://web.push.apple.com/QGx")
    assert clean_subscription(apple, hosts=PUSH_HOSTS, production=True).endpoint.startswith(
        "https://web.push.apple.com/")


def test_signing_out_everywhere_forgets_my_browsers(client, people):
    me, other = people.make(), people.make("李四")
    client.post(PATH, headers=me["headers"], json=Browser().subscription(FCM))
    client.post(PATH, headers=other["headers"], json=Browser().subscription(FCM + "-other"))
    r = client.post("/api/me/sign-out-everywhere", headers=me["headers"])
    assert r.status_code == 200, r.text
    from models.push import subscriptions_of

    with client.app.state.engine.connect() as conn:
        left = subscriptions_of(conn, [me["id"], other["id"]])
    assert list(left) == [other["id"]]  # mine are gone, the other citizen's stay
