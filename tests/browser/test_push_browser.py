"""Web Push in Chromium (docs/push.md): the home card's 开启通知, and the service worker
showing a pushed status change as a system notification (one tag per kind, so a newer
change replaces the older).

What headless Chromium cannot do here, said plainly: `pushManager.subscribe` needs the
browser's push service (Google's FCM for Chromium). In Playwright's contexts (off the record)
Chromium refuses it ("Registration failed - permission denied"); in a persistent profile it
waits for FCM, which this machine cannot reach. So the subscription is made the way the
browser would make it (tests/pushservice.py: a P-256 key pair and an auth secret), a real
status change runs through a real worker to the local push service, which checks the VAPID
signature and decrypts the message with the subscription's key, and the decrypted message is
handed to Chromium's service worker as a push event through the DevTools protocol
(`ServiceWorker.deliverPushMessage`, what DevTools' "Push" button does). Only the leg from the
push service to the browser is not Chromium's own; a tap on the notification
(notificationclick) cannot be made headless and is not tested here.
"""

from __future__ import annotations

import json
from datetime import date

from models.idnumber import make_id_number
from tests.browser.conftest import shot, sign_in
from tests.conftest import ADMIN
from tests.pushservice import Browser, PushService
from tests.workers.helpers import change, submit

NOTIFICATIONS = """() => navigator.serviceWorker.ready
  .then((registration) => registration.getNotifications())
  .then((shown) => shown.map((n) => ({title: n.title, body: n.body, tag: n.tag,
                                        data: n.data})))"""


def _citizen(client) -> dict:
    number = make_id_number("110105", date(1979, 5, 5), 801)
    r = client.post("/api/admin/citizens", headers=ADMIN,
                    json={"name": "王小明", "id_number": number, "phone": "13955556666"})
    assert r.status_code == 201, r.text
    body = r.json()
    return {**body, "id_number": number, "headers": {"Authorization": f"Bearer {body['token']}"}}


def _registration(page):
    """The DevTools session of the page and its service worker's registration id."""
    page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    cdp = page.context.new_cdp_session(page)
    seen: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda event: seen.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")
    page.wait_for_function("() => true")  # lets the protocol's events in
    for _ in range(50):
        if any(not r["isDeleted"] for r in seen):
            break
        page.wait_for_timeout(100)
    [live] = [r for r in seen if not r["isDeleted"]]
    return cdp, live["registrationId"]


def _shown(page, ready) -> list[dict]:
    """The notifications the service worker shows, once `ready(shown)` holds (15 s)."""
    for _ in range(150):
        shown = page.evaluate(NOTIFICATIONS)
        if ready(shown):
            return shown
        page.wait_for_timeout(100)
    raise AssertionError(f"notifications: {shown}")


def _push(page, cdp, registration_id: str, origin: str, payload: dict) -> None:
    cdp.send("ServiceWorker.deliverPushMessage", {
        "origin": origin + "/", "registrationId": registration_id,
        "data": json.dumps(payload, ensure_ascii=False)})


def test_a_pushed_status_change_shows_as_a_notification(server, client, run_jobs, new_page):
    person = _citizen(client)
    page = new_page()
    page.context.grant_permissions(["notifications"], origin=server.url)
    sign_in(page, server.url, person["token"], "/")
    page.wait_for_selector("#push-box:not([hidden])")
    assert page.inner_text("#push-on") == "开启通知"
    page.wait_for_function("() => window.scanbook.push === 'off'")
    # Chromium here cannot subscribe (see above): the card says so instead of hanging
    page.click("#push-on")
    page.wait_for_function("() => window.scanbook.push === 'failed'")
    assert page.inner_text("#push-state") == "开启失败，请稍后重试。"
    shot(page, "push-card")

    cdp, registration = _registration(page)
    received = []
    with PushService() as service:
        keys = Browser()
        r = client.post("/api/me/push-subscriptions", headers=person["headers"],
                        json=keys.subscription(service.endpoint("chromium")))
        assert r.status_code == 201, r.text
        for status in ("yellow", "red"):
            submit(client, "/api/admin/status-changes", {"changes": [change(person, status)]})
            run_jobs()
            received.append(keys.decrypt(service.to("chromium")[-1]))
        r = client.post("/api/admin/notices", headers=ADMIN, json={"text": "明日停水通知"})
        assert r.status_code == 201
        run_jobs()
        received.append(keys.decrypt(service.to("chromium")[-1]))

    _push(page, cdp, registration, server.url, received[0])
    [first] = _shown(page, lambda shown: len(shown) == 1)
    assert first["title"] == "健康状态变更" and "居家观察" in first["body"]
    assert first["tag"] == "scanbook-status"
    assert first["data"]["url"] == "/" and first["data"]["status"] == "yellow"

    _push(page, cdp, registration, server.url, received[1])  # the newer change replaces it
    [newer] = _shown(page, lambda shown: any(n["data"]["status"] == "red" for n in shown))
    assert "集中观察" in newer["body"]

    _push(page, cdp, registration, server.url, received[2])  # an announcement: its own tag
    shown = _shown(page, lambda shown: len(shown) == 2)
    assert {n["tag"] for n in shown} == {"scanbook-status", "scanbook-notice"}
    assert [n["body"] for n in shown if n["tag"] == "scanbook-notice"] == ["明日停水通知"]


def test_notifications_in_english_for_an_english_browser(server, client, run_jobs, new_page):
    from models.alerts import notice_payload

    person = _citizen(client)
    page = new_page(locale="en-US")
    page.context.grant_permissions(["notifications"], origin=server.url)
    sign_in(page, server.url, person["token"], "/")
    cdp, registration = _registration(page)
    _push(page, cdp, registration, server.url,
          notice_payload(notice_id=7, text="明日停水通知", at="2026-12-06T10:00:00+00:00"))
    [shown] = _shown(page, lambda shown: len(shown) == 1)
    assert shown["title"] == "Announcement" and shown["tag"] == "scanbook-notice"
    assert shown["body"] == "明日停水通知"  # an announcement is in the official's words
