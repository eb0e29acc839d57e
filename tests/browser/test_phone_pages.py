"""The visitor's scan page, the home page and the poster, in a real browser."""

from __future__ import annotations

import io
import re

import zxingcpp
from PIL import Image

from tests.browser.conftest import shot, sign_in
from tests.conftest import ADMIN


def test_visitor_signs_in_from_the_scan_page_and_checks_in(server, people, venue_with_logbook,
                                                          new_page):
    _owner, venue, logbook = venue_with_logbook
    visitor = people.make("欧阳娜娜")
    page = new_page()
    page.goto(f"{server.url}/s/{logbook['token']}")
    assert page.inner_text("#venue-name") == venue["name"]
    assert page.inner_text("#logbook-label") == "东门"
    assert page.locator("#check-in").count() == 0  # signed out: no button, a sign-in link
    shot(page, "scan-signed-out")
    page.click("#scan-sign-in a")
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("#token", visitor["token"])
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{server.url}/s/{logbook['token']}")

    # Back from signing in, the page checks her in at once: no 登记 tap.
    page.wait_for_selector("#result:not([hidden])")
    assert page.evaluate("window.scanbook.checkIns") == 1
    assert page.locator("#check-in").is_hidden()
    assert "status-green" in page.get_attribute("#result", "class")
    assert page.inner_text("#result-status") == "未见异常"
    assert page.inner_text("#result-name") == "欧阳**"
    assert page.inner_text("#result-id") == visitor["id_masked"]
    assert page.inner_text("#result-venue") == venue["name"]
    assert page.inner_text("#result-logbook") == "东门"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", page.inner_text("#result-time"))
    assert re.fullmatch(r"\d\d:\d\d:\d\d", page.inner_text("#clock"))  # the live clock
    assert page.inner_text("#result-note") == "登记成功"
    shot(page, "scan-green")

    # Scanning again within a minute shows the same check-in, and says so.
    page.reload()
    page.wait_for_selector("#result:not([hidden])")
    assert page.inner_text("#result-note") == "1分钟内已登记，无需重复"


def test_popup_status_card_in_english(server, client, people, run_jobs, venue_with_logbook,
                                      new_page):
    _owner, _venue, logbook = venue_with_logbook
    visitor = people.make("司马光")
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": visitor["id_number"], "status": "popup", "popup_kind": "travel",
         "reason": "行程核验"}]})
    assert r.status_code == 202
    run_jobs()
    page = new_page()
    sign_in(page, server.url, visitor["token"], f"/s/{logbook['token']}")
    page.goto(f"{server.url}/s/{logbook['token']}?lang=en")
    page.wait_for_selector("#result:not([hidden])")
    assert "status-popup" in page.get_attribute("#result", "class")
    assert page.inner_text("#result-status") == "Action needed"
    assert "Travel check" in page.inner_text("#result-kind")
    assert page.inner_text("#result-name") == "司马*"
    shot(page, "scan-popup-en")
    # The choice is remembered in a cookie: the next page is English without ?lang=.
    page.goto(f"{server.url}/")
    assert page.inner_text("h2#card-h") == "My health status"


def test_deleted_code_says_so_and_offers_no_button(server, client, people, venue_with_logbook,
                                                   new_page):
    owner, _venue, logbook = venue_with_logbook
    assert client.delete(f"/api/logbooks/{logbook['id']}",
                         headers=owner["headers"]).status_code == 204
    page = new_page()
    sign_in(page, server.url, people.make("张三丰")["token"], f"/s/{logbook['token']}")
    assert "登记簿已删除" in page.inner_text("#scan-unavailable")
    assert page.locator("#check-in").count() == 0
    shot(page, "scan-deleted")


def test_home_shows_my_card_and_my_venues(server, client, people, venue_with_logbook, new_page):
    owner, venue, logbook = venue_with_logbook
    page = new_page()
    page.goto(f"{server.url}/")
    assert page.locator("#home-sign-in").is_visible()
    sign_in(page, server.url, owner["token"], "/")
    page.wait_for_selector("#my-card.status-green")
    assert page.inner_text("#me-name") == "李*"
    card = page.inner_text("#my-card")
    assert "未见异常" in card and owner["id_masked"] in card and "null" not in card
    venue_item = page.locator(f"#my-venues li[data-venue-id='{venue['id']}']")
    venue_item.wait_for()
    assert venue["name"] in venue_item.inner_text()
    assert venue_item.locator(f"a[href='/venues/{venue['id']}']").is_visible()  # its console
    assert page.locator("#console-link").is_visible()
    shot(page, "home-registrar", full_page=True)
    venue_item.locator(f"a[href='/venues/{venue['id']}/live']").click()
    page.wait_for_function("() => window.scanbook && window.scanbook.connected")

    # Signing out ends the session: the live page sends the browser to sign in again.
    page.goto(f"{server.url}/")
    page.click("form[action='/logout'] button")
    page.wait_for_url(f"{server.url}/")
    page.goto(f"{server.url}/venues/{venue['id']}/live")
    assert "/login?next=" in page.url


def test_home_card_follows_status_changes_and_announcements(server, client, people, run_jobs,
                                                            new_page):
    visitor = people.make("张三丰")
    page = new_page()
    sign_in(page, server.url, visitor["token"], "/")
    page.wait_for_selector("#my-card.status-green")
    page.wait_for_selector("body[data-me-feed=ready]")
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": visitor["id_number"], "status": "red", "reason": "核酸阳性"}]})
    assert r.status_code == 202
    run_jobs()
    page.wait_for_selector("#my-card.status-red")
    assert "集中观察" in page.inner_text("#my-card")
    assert client.post("/api/admin/notices", headers=ADMIN,
                       json={"text": "今日起进入公共场所须扫码登记"}).status_code == 201
    page.wait_for_selector("#notices .bar-item")
    assert page.inner_text("#notices .bar-text") == "今日起进入公共场所须扫码登记"
    shot(page, "home-red-notice")


def test_poster_is_one_a4_page_whose_qr_opens_the_scan_page(server, venue_with_logbook,
                                                           new_page):
    owner, venue, logbook = venue_with_logbook
    page = new_page(viewport={"width": 794, "height": 1123}, is_mobile=False, has_touch=False)
    sign_in(page, server.url, owner["token"], f"/logbooks/{logbook['id']}/poster")
    assert page.inner_text("#poster-venue") == venue["name"]
    assert "东门" in page.inner_text("#poster-logbook")
    text = page.inner_text("#poster")
    assert "打开北京健康宝" in text and "扫码登记" in text
    assert page.inner_text("#poster-distance") == "请保持一米线距离"

    png = page.locator("#poster").screenshot()
    shot(page, "poster", full_page=True)
    assert page.locator(".poster-toolbar").is_visible()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert [b.text for b in found] == [logbook["scan_url"]]

    page.emulate_media(media="print")
    assert page.locator(".poster-toolbar").is_hidden()  # the print button is not printed
    shot(page, "poster-print", full_page=True)
    pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1


def fits_on_the_sheet(page) -> bool:
    return page.evaluate("""() => {
      const sheet = document.getElementById("poster").getBoundingClientRect();
      return [...document.querySelectorAll("#poster > *")].every(
        (e) => e.getBoundingClientRect().bottom <= sheet.bottom + 0.5);
    }""")


def test_poster_carries_its_short_code_and_address_and_prints_on_one_page(
        server, client, people, new_page):
    owner = people.make("李四")
    venue = client.post("/api/venues", headers=owner["headers"], json={
        "name": "北京市朝阳区望京街道望京西园四区社区卫生服务站附属便民超市（24小时营业）",
        "address": "朝阳区望京街道望京西园四区412号楼底商（地铁14号线望京站C口出站向北200米）",
        "district": "朝阳区", "category": "shop", "capacity": 80}).json()
    book = client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                       json={"label": "北侧入口（临时）"}).json()
    assert re.fullmatch(rf"{venue['id']}-{book['id']}-[A-Z2-7]{{4}}", book["short_code"])
    page = new_page(viewport={"width": 794, "height": 1123}, is_mobile=False, has_touch=False)
    sign_in(page, server.url, owner["token"], f"/logbooks/{book['id']}/poster")
    assert page.inner_text("#poster-short") == book["short_code"]
    assert page.inner_text("#poster-url") == book["scan_url"]  # the address the QR holds
    assert "望京西园四区412号楼" in page.inner_text("#poster-address")
    page.emulate_media(media="print")
    shot(page, "poster-long-print", full_page=True)
    assert fits_on_the_sheet(page)  # nothing runs off the page or is clipped
    pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1
    shot(page, "poster-long-print", full_page=True)
    phone = new_page()
    sign_in(phone, server.url, owner["token"], f"/logbooks/{book['id']}/poster")
    shot(phone, "poster-390", full_page=True)
    wide = new_page(viewport={"width": 1920, "height": 1080}, is_mobile=False, has_touch=False)
    sign_in(wide, server.url, owner["token"], f"/logbooks/{book['id']}/poster")
    shot(wide, "poster-1920")
