"""Offline with the service worker, in Chromium: a phone that has opened Scanbook once scans a
venue's code with no signal — the scan page comes from the service worker, the check-in is
queued with its time, and it is sent when the phone is back online (recorded at the scan
time, the scanned_at rule). The manifest makes the pages installable."""

from __future__ import annotations

import time
from datetime import datetime

from tests.browser.conftest import shot, sign_in


def test_a_scan_without_signal_is_queued_then_sent(server, client, people, new_page):
    owner = people.make("李四")
    venue = client.post("/api/venues", headers=owner["headers"], json={
        "name": "地下超市", "address": "某路1号", "district": "朝阳区", "category": "shop"}).json()
    book = client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                       json={"label": "B1入口"}).json()
    visitor = people.make("王小明")
    page = new_page()
    sign_in(page, server.url, visitor["token"], "/")
    # the manifest is linked and served
    href = page.get_attribute("link[rel=manifest]", "href")
    manifest = client.get(href).json()
    assert manifest["start_url"] == "/" and manifest["display"] == "standalone"
    # the service worker installs (keeping the offline scan page) and takes the page over
    page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    if not page.evaluate("() => navigator.serviceWorker.controller !== null"):
        page.reload()
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)

    page.context.set_offline(True)
    page.goto(f"{server.url}/s/{book['token']}")
    page.wait_for_selector("#result:not([hidden])")
    assert page.get_attribute("#result", "data-status") == "pending"
    assert page.inner_text("#result-status") == "待发送"
    assert page.evaluate("() => window.scanbook.pending") == 1
    [queued] = page.evaluate("JSON.parse(localStorage.getItem('scanbook.pending.v1'))")
    shot(page, "offline-scan-queued")
    time.sleep(2)  # the check-in must be recorded at the scan time, not at delivery
    assert client.get(f"/api/logbooks/{book['id']}/checkins",
                      headers=owner["headers"]).json()["items"] == []

    page.context.set_offline(False)
    page.wait_for_function("() => window.scanbook.delivered === 1", timeout=20_000)
    assert page.get_attribute("#result", "data-status") == "green"
    assert page.inner_text("#result-venue") == "地下超市"
    [item] = client.get(f"/api/logbooks/{book['id']}/checkins",
                        headers=owner["headers"]).json()["items"]
    # The time the page stored with the queued scan (not the test's clock: opening the page
    # through the service worker can take seconds on a loaded machine).
    scanned = datetime.fromisoformat(queued["scanned_at"].replace("Z", "+00:00")).timestamp()
    assert abs(datetime.fromisoformat(item["at"]).timestamp() - scanned) < 0.01
    shot(page, "offline-scan-delivered")
