"""The scan result as the card staff check at the door: opening the page is the check-in,
the card has the photo (with the minor label), date and live clock, the status big, and for
an abnormal status 请勿入场, the advice and whom to call; a popup opens a dialog whose 继续
leads to its flow."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from tests.browser.conftest import shot, sign_in
from tests.browser.test_live import set_status

DESKTOP = {"viewport": {"width": 1920, "height": 1080}, "is_mobile": False, "has_touch": False}


def open_scan(new_page, server, person, code, **options):
    page = new_page(**options)
    sign_in(page, server.url, person["token"], f"/s/{code}")
    page.wait_for_selector("#result:not([hidden])")  # no tap: the page checked in
    return page


def in_first_screen(page, selector) -> bool:
    box = page.locator(selector).bounding_box()
    height = page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


def test_red_card_says_do_not_enter_whom_to_call_with_date_and_live_clock(
        server, client, people, run_jobs, venue_with_logbook, new_page):
    owner, _venue, logbook = venue_with_logbook
    visitor = people.make("张三丰")
    set_status(client, run_jobs, visitor, "red")
    page = open_scan(new_page, server, visitor, logbook["token"])
    assert page.get_attribute("#result", "data-status") == "red"
    assert page.inner_text("#result-status") == "集中观察"
    assert page.inner_text("#result-entry") == "请勿入场"
    assert "疾控中心" in page.inner_text("#result-advice")
    assert "12320" in page.inner_text("#result-contact")
    assert page.inner_text("#result-note") != "登记成功"
    assert page.inner_text("#result-date") == (
        page.evaluate("new Date().toLocaleDateString('sv-SE', {timeZone: 'Asia/Shanghai'})"))
    first = page.inner_text("#clock")
    assert re.fullmatch(r"\d\d:\d\d:\d\d", first)
    page.wait_for_function(
        f"() => document.getElementById('clock').textContent !== {first!r}")
    assert page.locator("#result-minor").count() == 0  # an adult: no minor label
    # What a guard must see is in the first screen of a phone.
    for selector in ("#result-status", "#result-entry", "#clock", "#result-contact"):
        assert in_first_screen(page, selector), selector
    shot(page, "scan-red-390")
    # Checked in without a tap: the registrar's list has the arrival.
    items = client.get(f"/api/logbooks/{logbook['id']}/checkins",
                       headers=owner["headers"]).json()["items"]
    assert [i["status"] for i in items] == ["red"]

    wide = open_scan(new_page, server, visitor, logbook["token"], **DESKTOP)
    assert wide.inner_text("#result-entry") == "请勿入场"
    shot(wide, "scan-red-1920")


def test_yellow_card_and_green_card_in_english(server, client, people, run_jobs,
                                               venue_with_logbook, new_page):
    _owner, _venue, logbook = venue_with_logbook
    yellow = people.make("王小明")
    set_status(client, run_jobs, yellow, "yellow")
    page = open_scan(new_page, server, yellow, logbook["token"])
    assert page.inner_text("#result-entry") == "请勿入场"
    assert "居委会" in page.inner_text("#result-contact")
    shot(page, "scan-yellow-390")

    green = people.make("李雷")
    page = new_page()
    page.goto(f"{server.url}/?lang=en")
    sign_in(page, server.url, green["token"], f"/s/{logbook['token']}")
    page.wait_for_selector("#result:not([hidden])")
    assert page.inner_text("#result-status") == "No abnormality"
    assert page.locator("#result-entry").is_hidden()  # green: nothing to stop
    assert page.locator("#result-advice-box").is_hidden()
    assert page.inner_text("#result-note") == "Checked in"


def test_a_minors_photo_carries_the_label_at_its_bottom(server, client, people,
                                                       venue_with_logbook, new_page):
    _owner, _venue, logbook = venue_with_logbook
    child = people.make("李小萌", born=date.today() - timedelta(days=365 * 10))
    page = open_scan(new_page, server, child, logbook["token"])
    label = page.locator("#result-minor")
    assert label.inner_text() == "未成年人照片未经人脸识别"
    photo = page.locator(".result-photo").bounding_box()
    box = label.bounding_box()
    # Inside the photo, at its bottom edge.
    assert photo["y"] < box["y"] and abs((box["y"] + box["height"])
                                         - (photo["y"] + photo["height"])) <= 4
    shot(page, "scan-minor-390")


@pytest.mark.parametrize("kind", ["travel", "risk_area"])
def test_a_popup_is_a_dialog_whose_continue_leads_to_its_flow(server, client, people, run_jobs,
                                                              venue_with_logbook, new_page,
                                                              kind):
    _owner, _venue, logbook = venue_with_logbook
    visitor = people.make("司马光")
    set_status(client, run_jobs, visitor, "popup", popup_kind=kind)
    page = open_scan(new_page, server, visitor, logbook["token"])
    page.wait_for_selector("#popup-dialog[open]")
    assert page.evaluate("document.getElementById('popup-dialog').matches(':modal')")
    title = page.inner_text("#popup-title")
    assert title == ("弹窗 · 行程核验" if kind == "travel" else "弹窗 · 风险地区")
    go = page.locator("#popup-continue")
    shot(page, f"scan-popup-{kind}-390")
    if kind == "travel":
        assert go.inner_text() == "继续"
        guide = client.get("/api/status-guide").json()["items"]
        travel = next(g for g in guide if g["popup_kind"] == "travel")
        assert go.get_attribute("href") == travel["action"]["url"]
        assert page.inner_text("#popup-entry") == "核验前请勿入场"
    else:
        assert go.get_attribute("href") == "tel:12345"
        assert "社区" in page.inner_text("#popup-advice")
    # 稍后处理 closes it; the card keeps the way to the flow.
    page.click("#popup-later")
    assert not page.evaluate("document.getElementById('popup-dialog').open")
    if kind == "travel":
        assert page.locator("#result-action").is_visible()
    else:
        assert page.locator("#result-report-link").get_attribute("href") == "tel:12345"
    shot(page, f"scan-popup-{kind}-card-390")
