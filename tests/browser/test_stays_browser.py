"""Stays in a real browser: 离场 on the scan result page and in the visit history, and the
result page saying that the venue is full."""

from __future__ import annotations

from tests.browser.conftest import shot, sign_in


def _venue(client, owner, name, capacity=None):
    body = {"name": name, "address": "某路1号", "district": "朝阳区", "category": "shop"}
    if capacity:
        body["capacity"] = capacity
    venue = client.post("/api/venues", headers=owner["headers"], json=body).json()
    book = client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                       json={"label": "正门"}).json()
    return venue, book


def _listing(client, owner, book) -> list[dict]:
    return client.get(f"/api/logbooks/{book['id']}/checkins",
                      headers=owner["headers"]).json()["items"]


def test_leave_from_the_result_page_and_the_full_notice(server, client, people, new_page):
    owner = people.make("李四")
    _venue_, book = _venue(client, owner, "小面馆", capacity=1)
    visitor = people.make("王小明")
    page = new_page()
    sign_in(page, server.url, visitor["token"], f"/s/{book['token']}")
    page.wait_for_selector("#result:not([hidden])")
    page.wait_for_selector("#leave")  # the stay is open: 离场 under the card
    # one visitor in a venue of capacity 1: full
    assert page.locator("#venue-full").is_visible()
    assert page.inner_text("#venue-full") == "该场所已满员，请听从工作人员安排。"
    shot(page, "scan-card-venue-full")
    page.click("#leave")
    page.wait_for_selector("#left-note:not([hidden])")
    assert page.inner_text("#left-note").startswith("已离场 ")
    assert page.locator("#leave").count() == 0 and not page.locator("#venue-full").is_visible()
    [item] = _listing(client, owner, book)
    assert item["left_at"] is not None
    assert page.inner_text("#left-note").endswith(item["left_at"][11:19])
    shot(page, "scan-card-left")


def test_visit_history_lists_visits_and_leaves_the_open_one(server, client, people, new_page):
    owner = people.make("李四")
    first_venue, first = _venue(client, owner, "书店")
    _second_venue, second = _venue(client, owner, "咖啡馆")
    visitor = people.make("王小明")
    for book in (first, second):  # the second scan ends the first stay
        r = client.post("/api/scan", headers=visitor["headers"], json={"code": book["token"]})
        assert r.status_code == 201
    page = new_page()
    sign_in(page, server.url, visitor["token"], "/me/visits")
    page.wait_for_function("() => window.scanbook && window.scanbook.loaded")
    items = page.locator("#visits li")
    assert items.count() == 2
    newest, oldest = items.nth(0), items.nth(1)
    assert "咖啡馆" in newest.inner_text() and "在场" in newest.inner_text()
    assert "书店" in oldest.inner_text() and "离开" in oldest.inner_text()
    assert oldest.locator("button").count() == 0
    shot(page, "visits")
    newest.locator("button.leave-button").click()
    page.wait_for_function(
        "() => document.querySelector('#visits li .visit-left').textContent.startsWith('已离场')")
    assert newest.locator("button").count() == 0
    assert all(i["left_at"] for i in _listing(client, owner, second))
    assert first_venue["name"] == "书店"


def test_household_added_once_then_checked_in_from_the_result_page(server, client, people,
                                                                   new_page):
    from datetime import date, timedelta

    owner = people.make("李四")
    _venue_, book = _venue(client, owner, "游乐场")
    parent = people.make("张三丰")
    child = people.make("张小明", born=date.today() - timedelta(days=365 * 8))
    page = new_page()
    sign_in(page, server.url, parent["token"], "/me/household")
    page.wait_for_function("() => window.scanbook && window.scanbook.loaded")
    page.fill("#dep-name", "张小红")  # not her name: refused, nothing said about which part
    page.fill("#dep-id", child["id_number"])
    page.click("#household-form button[type=submit]")
    page.wait_for_selector("#household-error:not([hidden])")
    assert page.inner_text("#household-error") == "姓名与身份证号码不匹配或查无此人。"
    page.fill("#dep-name", "张小明")
    page.click("#household-form button[type=submit]")
    page.wait_for_selector("#household li")
    assert "张**" in page.inner_text("#household li") and "未成年人" in page.inner_text(
        "#household li")
    shot(page, "household")

    page.goto(f"{server.url}/s/{book['token']}")  # opening it checks the parent in
    page.wait_for_selector("#household-box:not([hidden])")
    page.click("#household-checkin")
    page.wait_for_selector("#household-result li")
    member = page.locator("#household-result li").first
    assert member.get_attribute("data-status") == "green"
    assert "张**" in member.inner_text() and "未成年人" in member.inner_text()
    shot(page, "scan-card-household")
    items = _listing(client, owner, book)
    assert sorted(i["minor"] for i in items) == [False, True]
