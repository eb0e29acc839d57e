"""The travel popup on a citizen's phone: 继续 opens the itinerary platform and starts a
verification (the page says it waits for the platform); the platform's signed callback turns
the card green live; a failed check says so and leaves the popup."""

from __future__ import annotations

import time

import httpx2 as httpx
import orjson

from models.itinerary import HEADER, signature
from models.settings import load_settings
from tests.browser.conftest import register, shot, sign_in
from tests.conftest import ADMIN

PLATFORM = "https://xc.caict.ac.cn/**"


def _callback(server, person, result: str, reference: str) -> None:
    body = orjson.dumps({"id_number": person["id_number"], "result": result,
                         "reference": reference, "at": "2026-12-06T19:00:00+08:00"})
    header = signature(load_settings().itinerary_secret, body, int(time.time()))
    r = httpx.post(f"{server.url}/api/itinerary/callback", content=body,
                   headers={HEADER: header, "Content-Type": "application/json"})
    assert r.status_code == 200, r.text


def test_continue_starts_a_verification_and_the_platform_finishes_it(server, client,
                                                                     run_jobs, new_page):
    me = register(client, "郑十", "13912340077")
    assert client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": me["id_number"], "status": "popup", "popup_kind": "travel",
         "reason": "行程涉及中高风险地区"}]}).status_code == 202
    run_jobs()
    page = new_page()
    page.context.route(PLATFORM, lambda route: route.fulfill(
        body="itinerary platform", content_type="text/plain"))
    sign_in(page, server.url, me["token"])
    page.wait_for_function("() => document.body.dataset.meFeed === 'ready'")
    assert page.get_attribute("#my-card", "data-status") == "popup"
    assert page.locator("#itinerary-state").is_hidden()

    with page.context.expect_page() as platform:
        page.click("#card-action")
    assert platform.value.url.startswith("https://xc.caict.ac.cn/")
    page.wait_for_selector("#itinerary-state[data-state=pending]")
    assert "等待行程核验平台" in page.inner_text("#itinerary-state")
    shot(page, "itinerary-pending")
    # Still a popup: pressing 继续 finished nothing.
    assert client.get("/api/me", headers=me["headers"]).json()["status"] == "popup"

    _callback(server, me, "failed", "XC-B-1")  # no status change: the page polls the card
    page.wait_for_selector("#itinerary-state[data-state=failed]")
    assert "未通过" in page.inner_text("#itinerary-state")
    assert page.get_attribute("#my-card", "data-status") == "popup"

    with page.context.expect_page():
        page.click("#card-action")
    page.wait_for_selector("#itinerary-state[data-state=pending]")
    _callback(server, me, "passed", "XC-B-2")
    page.wait_for_selector("#my-card[data-status=green]")  # live, from /ws/me
    assert page.locator("#itinerary-state").is_hidden()
    assert page.locator("#card-action-wrap").is_hidden()
    shot(page, "itinerary-passed")


def test_continue_on_the_scan_pages_popup_starts_a_verification(server, client, people,
                                                                 run_jobs, venue_with_logbook,
                                                                 new_page):
    _owner, _venue, logbook = venue_with_logbook
    visitor = people.make("司马光")
    assert client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": visitor["id_number"], "status": "popup", "popup_kind": "travel",
         "reason": "行程涉及中高风险地区"}]}).status_code == 202
    run_jobs()
    page = new_page()
    page.context.route(PLATFORM, lambda route: route.fulfill(
        body="itinerary platform", content_type="text/plain"))
    sign_in(page, server.url, visitor["token"], f"/s/{logbook['token']}")
    page.wait_for_selector("#popup-dialog[open]")
    page.click("#popup-continue")  # the link leaves for the platform; the request goes on
    page.wait_for_url("https://xc.caict.ac.cn/**")
    deadline = time.monotonic() + 10
    while (card := client.get("/api/me", headers=visitor["headers"]).json())["itinerary"] is None:
        assert time.monotonic() < deadline, "no verification was started"
        time.sleep(0.1)
    assert card["status"] == "popup" and card["itinerary"]["state"] == "pending"
