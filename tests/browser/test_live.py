"""The registrar's live page in a real browser: arrivals as they happen, the siren for an
abnormal arrival, acknowledging it, and resuming after a reload and after a server restart."""

from __future__ import annotations

import json
from datetime import datetime

from sqlmodel import Session

from models.tables import Logbook
from models.timeutil import BEIJING
from models.venues import set_logbook_state
from realtime.events import publish, venue_channel
from tests.browser.conftest import shot, sign_in
from tests.conftest import ADMIN
from tests.servers import free_port, start_server

ROWS = "#arrivals li.arrival"


def set_status(client, run_jobs, person, status, **extra):
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": person["id_number"], "status": status, "reason": "流调协查", **extra}]})
    assert r.status_code == 202, r.text
    run_jobs()
    assert client.get("/api/me", headers=person["headers"]).json()["status"] == status


def check_in_on_phone(page, base_url, person, code):
    """Sign in and open the scanned code's page (opening it checks in); returns the status
    card's class."""
    sign_in(page, base_url, person["token"], f"/s/{code}")
    page.wait_for_selector("#result:not([hidden])")
    return page.get_attribute("#result", "class")


def row_ids(page) -> list[int]:
    return page.eval_on_selector_all(ROWS, "els => els.map(e => Number(e.dataset.id))")


def open_live(new_page, base_url, owner, venue_id):
    page = new_page()
    sign_in(page, base_url, owner["token"], f"/venues/{venue_id}/live")
    page.click("#enable-sound")
    page.wait_for_function("() => window.scanbook && window.scanbook.connected")
    page.wait_for_selector("#enable-sound.on")
    return page


def test_arrivals_live_and_the_siren_for_an_abnormal_one(server, client, people, run_jobs,
                                                        venue_with_logbook, new_page):
    owner, venue, logbook = venue_with_logbook
    live = open_live(new_page, server.url, owner, venue["id"])
    assert live.locator("#sound-warning").is_hidden()
    assert live.locator("#empty").is_visible()

    green = people.make("欧阳娜娜")
    assert "status-green" in check_in_on_phone(new_page(), server.url, green, logbook["token"])
    live.wait_for_selector(f"{ROWS}.status-green")
    row = live.locator(ROWS).first
    assert row.locator(".name").inner_text() == "欧阳**"
    assert row.locator(".idn").inner_text() == green["id_masked"]
    assert "东门" in row.locator(".meta").inner_text()
    assert row.locator(".badge").inner_text() == "未见异常"
    assert live.evaluate("window.scanbook.sirenCount") == 0
    assert live.locator("#pinned .alert-card").count() == 0
    assert live.inner_text("#count-total") == "1" and live.inner_text("#count-abnormal") == "0"

    yellow = people.make("王小明")
    set_status(client, run_jobs, yellow, "yellow")
    phone = new_page()
    assert "status-yellow" in check_in_on_phone(phone, server.url, yellow, logbook["token"])
    assert phone.inner_text("#result-status") == "居家观察"
    live.wait_for_function("() => window.scanbook.sirenCount === 1")
    live.wait_for_selector(f"{ROWS}.status-yellow")
    assert live.locator(ROWS).first.get_attribute("data-status") == "yellow"  # newest first
    alert = live.locator("#pinned .alert-card")
    assert alert.count() == 1
    assert "王**" in alert.inner_text() and "居家观察" in alert.inner_text()
    assert "alarm" in live.get_attribute("body", "class")
    assert live.inner_text("#count-total") == "2" and live.inner_text("#count-abnormal") == "1"
    shot(live, "live-alert")

    live.click("#pinned .ack")
    assert live.locator("#pinned .alert-card").count() == 0
    assert "alarm" not in (live.get_attribute("body", "class") or "")
    assert live.evaluate("window.scanbook.sirenCount") == 1  # acknowledging does not re-sound
    shot(live, "live-acknowledged")

    # A reload resumes from the last id it saw: the same list, nothing twice.
    before = row_ids(live)
    last_id = live.evaluate("window.scanbook.lastId")
    assert before == sorted(before, reverse=True) and len(before) == 2
    live.reload()
    live.wait_for_function("() => window.scanbook.connected")
    assert row_ids(live) == before
    assert live.evaluate("window.scanbook.lastId") == last_id
    assert live.locator("#pinned .alert-card").count() == 0  # acknowledged stays acknowledged
    assert live.inner_text("#count-total") == "2"

    # A proxy check-in (a visitor without a phone) after the reload arrives exactly once.
    r = client.post(f"/api/logbooks/{logbook['id']}/proxy-checkins", headers=owner["headers"],
                    json={"name": "赵六", "id_number": people.make("赵六")["id_number"]})
    assert r.status_code == 201, r.text
    live.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length === 3")
    ids = row_ids(live)
    assert ids[0] == r.json()["id"] and len(set(ids)) == 3
    assert "代登记" in live.locator(ROWS).first.inner_text()
    assert live.inner_text("#count-total") == "3" and live.inner_text("#count-abnormal") == "1"
    shot(live, "live-after-reload")


def test_a_fresh_page_shows_earlier_arrivals_without_the_siren(server, client, people, run_jobs,
                                                               venue_with_logbook, new_page):
    owner, venue, logbook = venue_with_logbook
    red = people.make("诸葛亮")
    set_status(client, run_jobs, red, "red")
    for person in (people.make("张三丰"), red):
        r = client.post("/api/scan", headers=person["headers"], json={"code": logbook["token"]})
        assert r.status_code == 201, r.text
    live = open_live(new_page, server.url, owner, venue["id"])
    live.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length === 2")
    assert [live.locator(ROWS).nth(i).get_attribute("data-status") for i in (0, 1)] == [
        "red", "green"]
    assert live.locator(ROWS).first.locator(".name").inner_text() == "诸葛*"
    assert live.inner_text("#count-total") == "2" and live.inner_text("#count-abnormal") == "1"
    assert live.evaluate("window.scanbook.sirenCount") == 0
    assert live.locator("#pinned .alert-card").count() == 0


def test_logbook_state_changes_show_as_banners(server, client, engine, redis_client, people,
                                              venue_with_logbook, new_page):
    owner, venue, logbook = venue_with_logbook
    r = client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                    json={"label": "西门"})
    assert r.status_code == 201
    west = r.json()
    live = open_live(new_page, server.url, owner, venue["id"])

    # What the violations job does: suspend in the database, then ring the venue's doorbell.
    with Session(engine) as session:
        event = set_logbook_state(session, session.get(Logbook, logbook["id"]), "suspended",
                                  "登记员违规")
        session.commit()
    publish(redis_client, [(venue_channel(venue["id"]), event)])
    banner = live.locator(f"#banners [data-logbook-id='{logbook['id']}']")
    banner.wait_for()
    assert "登记簿「东门」已暂停使用" in banner.inner_text()
    assert "登记员违规" in banner.inner_text()

    assert client.delete(f"/api/logbooks/{west['id']}",
                         headers=owner["headers"]).status_code == 204
    deleted = live.locator(f"#banners [data-logbook-id='{west['id']}']")
    deleted.wait_for()
    assert "登记簿「西门」已删除" in deleted.inner_text()
    shot(live, "live-banners")

    # Opened afresh, the page shows the suspension from the logbook's state.
    live.reload()
    assert "登记簿「东门」已暂停使用" in live.locator(
        f"#banners [data-logbook-id='{logbook['id']}']").inner_text()


def test_reconnects_after_a_server_restart_and_misses_nothing(client, people, run_jobs,
                                                              venue_with_logbook, new_page):
    owner, venue, logbook = venue_with_logbook
    port = free_port()
    server = start_server(port=port)
    try:
        live = open_live(new_page, server.url, owner, venue["id"])
        first = people.make("张三丰")
        assert client.post("/api/scan", headers=first["headers"],
                           json={"code": logbook["token"]}).status_code == 201
        live.wait_for_selector(f"{ROWS}.status-green")

        server.stop()
        live.wait_for_function("() => !window.scanbook.connected")
        # While the registrar's page is cut off, an abnormal visitor arrives.
        missed = people.make("上官婉儿")
        set_status(client, run_jobs, missed, "popup", popup_kind="risk_area")
        r = client.post("/api/scan", headers=missed["headers"], json={"code": logbook["token"]})
        assert r.status_code == 201 and r.json()["alert"] is True

        server = start_server(port=port)
        live.wait_for_function("() => window.scanbook.readyCount >= 2", timeout=40_000)
        live.wait_for_selector(f"{ROWS}.status-popup")
        ids = row_ids(live)
        assert ids == [r.json()["checkin_id"], ids[1]] and len(set(ids)) == 2
        assert live.evaluate("window.scanbook.lastId") == r.json()["checkin_id"]
        assert live.evaluate("window.scanbook.sirenCount") == 1
        alert = live.locator("#pinned .alert-card")
        assert alert.count() == 1 and "上官**" in alert.inner_text()
        assert "风险地区" in alert.inner_text()
        assert live.inner_text("#count-abnormal") == "1"
        shot(live, "live-resumed")
    finally:
        server.stop()


def test_stored_state_from_a_reset_database_is_not_resumed(server, client, people,
                                                          venue_with_logbook, new_page):
    """sessionStorage naming ids the server never issued (a restored or new database) would
    make the page resume past arrivals it never saw: it starts afresh instead."""
    owner, venue, logbook = venue_with_logbook
    page = new_page()
    planted = json.dumps({"day": datetime.now(BEIJING).date().isoformat(), "lastId": 10**9,
                          "pinned": [], "items": [{"id": 10**9, "status": "red", "name": "幽*",
                                                   "id_number": "x", "at": ""}]})
    page.context.add_init_script(
        f"sessionStorage.setItem('scanbook.live.v1.{venue['id']}', {json.dumps(planted)})")
    sign_in(page, server.url, owner["token"], f"/venues/{venue['id']}/live")
    page.wait_for_function("() => window.scanbook.connected")
    assert page.evaluate("window.scanbook.lastId") == 0
    assert page.locator(ROWS).count() == 0
    visitor = people.make("张三丰")
    assert client.post("/api/scan", headers=visitor["headers"],
                       json={"code": logbook["token"]}).status_code == 201
    page.wait_for_selector(f"{ROWS}.status-green")
    assert page.locator(ROWS).count() == 1
