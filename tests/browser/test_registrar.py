"""A registrar in a real browser: open a venue, add logbooks and a co-registrar, check in a
visitor without a phone, export CSV and XLSX, delete a logbook after confirming; the live
page's abnormal-only filter and siren; the entrance display whose code rotates every 30 s
and the phone that scans an expired one."""

from __future__ import annotations

import csv
import io
import os
import re
import time
from datetime import date

import zxingcpp
from openpyxl import load_workbook
from PIL import Image

from models import rotating
from models.idnumber import make_id_number
from tests.browser.conftest import register, shot, sign_in, sign_in_by_sms
from tests.browser.test_live import ROWS, check_in_on_phone, open_live, set_status

SECRET = os.environ["SCANBOOK_SECRET"]
TABLET = {"viewport": {"width": 800, "height": 1150}, "is_mobile": False, "has_touch": True}


def test_console_from_opening_a_venue_to_deleting_a_logbook(server, client, redis_client,
                                                            people, run_jobs, new_page):
    owner = register(client, "李四", "13912340002")
    page = new_page()
    sign_in_by_sms(page, server.url, redis_client, owner["phone"], "/console")
    assert page.locator("#console-empty").is_visible()

    # Open a venue with the unit's details.
    page.fill("#venue-name-input", "朝阳大悦城")
    page.click("#venue-submit")  # incomplete: says what is missing, sends nothing
    page.wait_for_selector("#venue-error:not([hidden])")
    assert "地址" in page.inner_text("#venue-error")
    page.fill("#venue-address", "朝阳北路101号")
    page.select_option("#venue-district", "朝阳区")
    page.select_option("#venue-category", "shop")
    page.fill("#venue-capacity", "500")
    shot(page, "console-open-venue", full_page=True)
    page.click("#venue-submit")
    page.wait_for_url(re.compile(r"/venues/\d+$"))
    venue_id = int(page.url.rsplit("/", 1)[1])
    assert page.inner_text("#venue-title") == "朝阳大悦城"
    meta = page.inner_text("#venue-meta")
    assert "朝阳区" in meta and "商场超市" in meta

    # Two logbooks.
    for label in ("东门", "西门"):
        page.fill("#logbook-label-input", label)
        page.click("#logbook-form button[type=submit]")
        page.wait_for_selector(f"li.logbook[data-label='{label}']")
    books = {b["label"]: b for b in client.get(f"/api/venues/{venue_id}/logbooks",
                                               headers=owner["headers"]).json()["items"]}
    east, west = books["东门"], books["西门"]

    # A co-registrar, invited by the citizen number on their card (more in
    # test_registrars_invited_accepted_removed_and_leaving below).
    helper = people.make("周七")
    page.fill("#registrar-id", str(helper["id"]))
    page.click("#registrar-form button[type=submit]")
    page.wait_for_selector("#registrar-status.notice-ok")
    page.wait_for_selector(f"#invitations li[data-citizen-id='{helper['id']}']")

    # A visitor without a phone (a registered citizen), checked in by the registrar.
    elder = people.make("赵六", born=date(1950, 2, 3))
    page.select_option("#proxy-logbook", str(east["id"]))
    page.fill("#visitor-name", "赵六")
    page.fill("#visitor-id", elder["id_number"])
    page.click("#proxy-checkin-form button[type=submit]")
    page.wait_for_selector("#proxy-checkin-card")
    assert "赵*" in page.inner_text("#proxy-checkin-card")
    assert "未见异常" in page.inner_text("#proxy-checkin-card")
    yellow = people.make("王小明")
    set_status(client, run_jobs, yellow, "yellow")
    assert client.post("/api/scan", headers=yellow["headers"],
                       json={"code": east["token"]}).status_code == 201
    page.reload()
    assert "今日到访 2 人 · 异常 1 人" in page.inner_text("#venue-today")
    shot(page, "venue-console", full_page=True)

    # Exports: the browser downloads them with the session cookie.
    row = page.locator(f"li.logbook[data-logbook-id='{east['id']}']")
    with page.expect_download() as csv_download:
        row.get_by_text("导出 CSV").click()
    assert csv_download.value.suggested_filename == f"logbook-{east['id']}-东门.csv"
    text = open(csv_download.value.path(), encoding="utf-8-sig").read()
    rows = list(csv.reader(io.StringIO(text)))
    # The registrar's language: Chinese headers and status names, Beijing time to the second.
    assert rows[0][0] == "编号" and [r[3] for r in rows[1:]] == ["赵*", "王**"]
    assert [r[5] for r in rows[1:]] == ["未见异常", "居家观察"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r[1]) for r in rows[1:])
    with page.expect_download() as xlsx_download:
        row.get_by_text("导出 Excel").click()
    assert xlsx_download.value.suggested_filename.endswith(".xlsx")
    data = open(xlsx_download.value.path(), "rb").read()
    sheet = load_workbook(io.BytesIO(data), read_only=True).active
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0][0] == "编号" and [r[3] for r in values[1:]] == ["赵*", "王**"]

    # Delete asks first; cancelling keeps the logbook.
    west_row = page.locator(f"li.logbook[data-logbook-id='{west['id']}']")
    west_row.locator(".delete-logbook").click()
    page.wait_for_selector("#confirm-delete[open]")
    assert "确定删除登记簿「西门」" in page.inner_text("#confirm-text")
    shot(page, "venue-delete-confirm")
    page.click("#confirm-cancel")
    page.wait_for_selector("#confirm-delete", state="hidden")
    assert west_row.count() == 1
    assert client.get(f"/api/logbooks/{west['id']}",
                      headers=owner["headers"]).json()["state"] == "active"
    west_row.locator(".delete-logbook").click()
    page.click("#confirm-ok")
    page.wait_for_function("() => window.scanbook.deleted === 1")
    assert west_row.count() == 0
    assert client.get(f"/api/logbooks/{west['id']}",
                      headers=owner["headers"]).json()["state"] == "deleted"
    assert client.post("/api/scan", headers=people.make()["headers"],
                       json={"code": west["token"]}).status_code == 410

    # The console lists the venue.
    page.goto(f"{server.url}/console")
    assert "朝阳大悦城" in page.inner_text(f"li[data-venue-id='{venue_id}']")
    assert "1个登记簿" in page.inner_text(f"li[data-venue-id='{venue_id}']")
    shot(page, "console")
    page.goto(f"{server.url}/venues/{venue_id}?lang=en")
    assert page.inner_text("#logbooks-h") == "Logbooks"
    assert "2 arrivals today · 1 abnormal" in page.inner_text("#venue-today")
    assert page.locator("li.logbook").first.get_by_text("Export CSV").is_visible()
    shot(page, "venue-console-en", full_page=True)


def test_registrars_invited_accepted_removed_and_leaving(server, client, people, run_jobs,
                                                        venue_with_logbook, new_page):
    owner, venue, _logbook = venue_with_logbook
    helper, other = people.make("周七"), people.make("吴八")
    venue_url = f"/venues/{venue['id']}"
    page = new_page()
    sign_in(page, server.url, owner["token"], venue_url)
    assert page.locator("#no-invitations").is_visible()

    # (A proxy check-in of someone who is not registered: the card says to check by hand.)
    page.fill("#visitor-name", "孙七")
    page.fill("#visitor-id", make_id_number("110102", date(1950, 2, 3), 41))
    page.click("#proxy-checkin-form button[type=submit]")
    page.wait_for_selector("#proxy-checkin-card.status-unknown")
    assert "未登记，请人工核验" in page.inner_text("#proxy-checkin-card")

    # The owner invites two citizens and someone who does not exist: the same answer.
    for who in (helper["id"], other["id"], 987654):
        page.fill("#registrar-id", str(who))
        page.click("#registrar-form button[type=submit]")
        page.wait_for_selector(f"#invitations li[data-citizen-id='{who}']")
        assert "对方在首页接受后" in page.inner_text("#registrar-status")
    assert page.locator("#no-invitations").is_hidden()
    shot(page, "venue-registrars-invited")

    # The invitee sees the invitation on their home page and accepts it.
    phone = new_page()
    sign_in(phone, server.url, helper["token"], "/")
    card = phone.locator(".invitation")
    assert "李* 邀请您担任「望京SOHO塔1」的登记员" in card.inner_text()
    shot(phone, "home-invitation")
    card.get_by_role("button", name="接受").click()
    phone.wait_for_selector("#invitation-status.notice-ok")
    phone.wait_for_selector(f"#my-venues li[data-venue-id='{venue['id']}']")
    assert phone.locator(".invitation").count() == 0

    # The other one is not green: accepting is refused, to them only.
    set_status(client, run_jobs, other, "yellow")
    refused = new_page()
    sign_in(refused, server.url, other["token"], "/")
    refused.locator(".invitation").get_by_role("button", name="接受").click()
    refused.wait_for_selector("#invitation-status.notice-error")
    assert "暂不能担任登记员" in refused.inner_text("#invitation-status")

    # The owner's page: the helper is a registrar, the other two invitations still pending.
    page.reload()
    assert "周*" in page.inner_text(f"#registrars li[data-citizen-id='{helper['id']}']")
    pending = page.locator("#invitations li")
    assert pending.count() == 2
    assert other["name_masked"] not in page.inner_text("#invitations")

    # Withdraw the invitation nobody can answer; cancelling the dialog keeps it.
    ghost = page.locator("#invitations li[data-citizen-id='987654']")
    ghost.locator(".remove-registrar").click()
    page.wait_for_selector("#confirm-registrar[open]")
    page.click("#confirm-registrar-cancel")
    assert ghost.count() == 1
    ghost.locator(".remove-registrar").click()
    assert "#987654" in page.inner_text("#confirm-registrar-text")
    page.click("#confirm-registrar-ok")
    page.wait_for_function("() => window.scanbook.removed === 1")
    assert ghost.count() == 0

    # The helper watches the live page; the owner removes them: it closes (4403) at once.
    live = new_page()
    sign_in(live, server.url, helper["token"], f"{venue_url}/live")
    live.wait_for_function("() => window.scanbook && window.scanbook.connected")
    row = page.locator(f"#registrars li[data-citizen-id='{helper['id']}']")
    row.locator(".remove-registrar").click()
    assert "立即关闭" in page.inner_text("#confirm-registrar-text")
    shot(page, "venue-registrar-remove-confirm")
    page.click("#confirm-registrar-ok")
    page.wait_for_function("() => window.scanbook.removed === 2")
    assert row.count() == 0
    live.wait_for_selector("#closed:not([hidden])", timeout=5000)
    assert client.get(f"/api/venues/{venue['id']}/logbooks",
                      headers=helper["headers"]).status_code == 403

    # Invited again and accepted, the helper leaves by themselves.
    r = client.post(f"/api/venues/{venue['id']}/registrars", headers=owner["headers"],
                    json={"citizen_id": helper["id"]})
    client.post(f"/api/invitations/{r.json()['id']}/accept", headers=helper["headers"])
    phone.goto(f"{server.url}{venue_url}")
    assert phone.locator("#registrar-form").count() == 0
    phone.click("#leave-venue")
    assert "确定退出该场所" in phone.inner_text("#confirm-registrar-text")
    phone.click("#confirm-registrar-ok")
    phone.wait_for_url(f"{server.url}/console")
    items = client.get(f"/api/venues/{venue['id']}/registrars",
                       headers=owner["headers"]).json()["items"]
    assert [i["citizen_id"] for i in items] == [owner["id"]]
    page.goto(f"{server.url}{venue_url}?lang=en")
    assert page.inner_text("#invitations-h") == "Pending invitations"
    assert page.locator("#registrar-form button[type=submit]").inner_text() == (
        "Invite a co-registrar")


def test_an_expired_invitation_is_shown_and_replaced(server, client, people,
                                                    venue_with_logbook, new_page):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from models.tables import RegistrarInvitation

    owner, venue, _logbook = venue_with_logbook
    helper = people.make("周七")
    first = client.post(f"/api/venues/{venue['id']}/registrars", headers=owner["headers"],
                        json={"citizen_id": helper["id"]}).json()
    phone = new_page()
    sign_in(phone, server.url, helper["token"], "/")
    assert "有效至" in phone.inner_text(".invitation")
    # the week passes while the page is open
    with client.app.state.engine.begin() as conn:
        conn.execute(update(RegistrarInvitation).where(RegistrarInvitation.id == first["id"])
                     .values(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    phone.locator(".invitation").get_by_role("button", name="接受").click()
    phone.wait_for_selector("#invitation-status.notice-error")
    assert "该邀请已过期，请场所负责人重新邀请" in phone.inner_text("#invitation-status")
    assert phone.locator(".invitation").count() == 0

    page = new_page()
    sign_in(page, server.url, owner["token"], f"/venues/{venue['id']}")
    item = page.locator(f"#invitations li[data-citizen-id='{helper['id']}']")
    assert item.get_attribute("data-state") == "expired"
    assert "已过期" in item.inner_text() and "等待对方接受" not in item.inner_text()
    item.scroll_into_view_if_needed()
    shot(page, "venue-invitation-expired")
    page.fill("#registrar-id", str(helper["id"]))  # invite again: a new week
    page.click("#registrar-form button[type=submit]")
    page.wait_for_selector(f"#invitations li[data-citizen-id='{helper['id']}'][data-state=pending]")
    assert item.count() == 1 and "有效至" in item.inner_text()
    page.reload()
    assert item.count() == 1 and item.get_attribute("data-state") == "pending"
    phone.reload()
    phone.locator(".invitation").get_by_role("button", name="接受").click()
    phone.wait_for_selector("#invitation-status.notice-ok")


def test_live_feed_abnormal_only_filter_and_siren(server, client, people, run_jobs,
                                                  venue_with_logbook, new_page):
    owner, venue, logbook = venue_with_logbook
    live = open_live(new_page, server.url, owner, venue["id"])
    green, red = people.make("张三丰"), people.make("诸葛亮")
    set_status(client, run_jobs, red, "red")
    assert "status-green" in check_in_on_phone(new_page(), server.url, green, logbook["token"])
    live.wait_for_selector(f"{ROWS}.status-green")
    assert live.evaluate("window.scanbook.sirenCount") == 0
    live.click("#filter-abnormal")  # nothing abnormal yet: says so
    assert live.get_attribute("#filter-abnormal", "aria-pressed") == "true"
    assert live.locator(f"{ROWS}.status-green").is_hidden()
    assert live.locator("#empty-abnormal").is_visible()

    assert "status-red" in check_in_on_phone(new_page(), server.url, red, logbook["token"])
    live.wait_for_function("() => window.scanbook.sirenCount === 1")  # the siren sounded
    live.wait_for_selector(f"{ROWS}.status-red")
    assert live.locator("#empty-abnormal").is_hidden()
    visible = live.eval_on_selector_all(
        ROWS, "els => els.filter(e => e.offsetParent !== null).map(e => e.dataset.status)")
    assert visible == ["red"]
    assert live.inner_text("#count-total") == "2" and live.inner_text("#count-abnormal") == "1"
    live.click("#pinned .ack")
    shot(live, "live-abnormal-only")

    # The choice survives a reload; "显示全部" brings the others back.
    live.reload()
    live.wait_for_function("() => window.scanbook.connected")
    assert live.evaluate("window.scanbook.filter") == "abnormal"
    live.click("#filter-abnormal")
    assert live.locator(f"{ROWS}.status-green").is_visible()


def _decode(png: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1, found
    return found[0].text


def test_entrance_display_rotates_and_an_expired_code_is_refused(server, client, people,
                                                                 venue_with_logbook, new_page):
    owner, venue, logbook = venue_with_logbook
    screen = new_page(**TABLET)
    sign_in(screen, server.url, owner["token"], f"/logbooks/{logbook['id']}/display")
    first = screen.evaluate("window.scanbook.code")
    assert first.startswith(rotating.PREFIX) and logbook["token"] not in first
    assert logbook["token"] not in screen.content()  # the screen shows nothing permanent
    url = _decode(screen.locator("#display-qr-img").screenshot())
    assert url.endswith(f"/s/{first}")
    assert re.fullmatch(r"\d+秒后更新", screen.inner_text("#display-next"))
    shot(screen, "display")

    # A visitor scans what the screen shows: checked in.
    visitor = people.make("欧阳娜娜")
    phone = new_page()
    assert "status-green" in check_in_on_phone(phone, server.url, visitor, first)
    assert phone.inner_text("#result-venue") == venue["name"]

    # The screen fetches a new code when the 30-second window turns.
    screen.wait_for_function(f"() => window.scanbook.code !== {first!r}", timeout=45_000)
    second = screen.evaluate("window.scanbook.code")
    assert second.startswith(rotating.PREFIX) and second != first
    screen.wait_for_function(
        f"() => document.getElementById('display-qr-img').dataset.code === {second!r}")
    assert _decode(screen.locator("#display-qr-img").screenshot()).endswith(f"/s/{second}")

    # A photo of an older code, opened later: refused, with what to do instead.
    old = rotating.make_code(logbook["token"], rotating.window_of(time.time()) - 3, SECRET)
    late = new_page()
    sign_in(late, server.url, people.make("王五")["token"], f"/s/{old}")
    assert late.locator("#scan-expired").is_visible()
    assert "请扫描入口屏幕上正在显示的二维码" in late.inner_text("#scan-expired")
    assert late.locator("#check-in").count() == 0
    shot(late, "scan-expired")
    r = client.post("/api/scan", headers=people.make()["headers"], json={"code": old})
    assert r.status_code == 410 and r.json()["error"] == "code_expired"


def test_a_screen_cut_off_from_the_server_hides_its_dead_code(server, venue_with_logbook,
                                                               new_page):
    """Past its window and grace the code no longer checks anyone in: a screen that could
    not fetch the next one must not keep showing it (people would scan a dead code)."""
    owner, _venue, logbook = venue_with_logbook
    screen = new_page(**TABLET)
    screen.clock.install()
    sign_in(screen, server.url, owner["token"], f"/logbooks/{logbook['id']}/display")
    first = screen.evaluate("window.scanbook.code")
    screen.context.set_offline(True)
    screen.clock.fast_forward((rotating.WINDOW_SECONDS + rotating.GRACE_SECONDS + 5) * 1000)
    screen.wait_for_selector("#display-offline:not([hidden])")
    assert screen.evaluate("window.scanbook.stale") is True
    assert screen.evaluate("window.scanbook.failures") >= 1
    assert not screen.locator("#display-qr-img").is_visible() or screen.eval_on_selector(
        "#display-qr-img", "e => getComputedStyle(e).visibility") == "hidden"
    shot(screen, "display-offline")
    screen.context.set_offline(False)  # back online: a fresh code at once
    screen.wait_for_function("() => window.scanbook.stale === false")
    assert screen.evaluate("window.scanbook.refreshes") >= 1
    code = screen.evaluate("window.scanbook.code")
    assert code.startswith(rotating.PREFIX) and logbook["token"] not in code
    assert code == first or rotating.open_code(code, SECRET)[1] > rotating.open_code(first,
                                                                                     SECRET)[1]
