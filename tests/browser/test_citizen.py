"""A citizen in a real browser: sign in with an SMS code, scan a logbook and see the card,
the home page's photo (3-second press to retake), 通知栏, live status notices, 他人代查,
留言栏, and a scan made offline that is queued and delivered when the network returns."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

from PIL import Image
from sqlmodel import Session, select

from models.tables import Message
from models.timeutil import parse_iso
from tests.browser.conftest import register, shot, sign_in_by_sms
from tests.conftest import ADMIN
from web.otp import last_dev_code

PHONE = "13912340001"


def png(color=(220, 150, 120), size=(300, 400)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def test_sign_in_by_sms_then_scan_and_see_the_card(server, client, redis_client,
                                                   venue_with_logbook, new_page):
    _owner, venue, logbook = venue_with_logbook
    me = register(client, "欧阳娜娜", PHONE)
    page = new_page()
    page.goto(f"{server.url}/s/{logbook['token']}")
    page.click("#scan-sign-in a")  # signed out: the scan page sends her to sign in
    page.wait_for_selector("#otp-form")
    shot(page, "login")
    # A wrong code says so and keeps her on the page.
    page.fill("#otp-phone", PHONE)
    page.click("#otp-send")
    page.wait_for_selector("#otp-status:not([hidden])")
    assert page.locator("#otp-send").is_disabled()  # "resend in 60 s"
    assert "秒后重新获取" in page.inner_text("#otp-send")
    code = last_dev_code(redis_client, PHONE)
    page.fill("#otp-code", "000000" if code != "000000" else "111111")
    page.click("#otp-submit")
    page.wait_for_selector("#otp-error:not([hidden])")
    assert page.inner_text("#otp-error") == "验证码错误或已过期。"
    shot(page, "login-wrong-code")
    page.fill("#otp-code", code)
    page.click("#otp-submit")
    page.wait_for_url(f"{server.url}/s/{logbook['token']}")

    # Back on the scan page, opening it is the check-in: no extra tap.
    page.wait_for_selector("#result:not([hidden])")
    assert page.get_attribute("#result", "data-status") == "green"
    assert page.inner_text("#result-status") == "未见异常"
    assert page.inner_text("#result-name") == "欧阳**"
    assert page.inner_text("#result-id") == me["id_masked"]
    assert page.inner_text("#result-venue") == venue["name"]
    shot(page, "scan-card-after-sms-sign-in")


def test_home_card_photo_long_press_retake(server, client, redis_client, new_page):
    register(client, "张小明", PHONE, born=date.today() - timedelta(days=365 * 12))  # a minor
    page = new_page()
    sign_in_by_sms(page, server.url, redis_client, PHONE)
    page.wait_for_selector("#my-card.status-green")
    assert page.inner_text("#me-name") == "张**"
    assert page.inner_text("#photo-label") == "未成年人照片未经人脸识别"
    assert page.locator("#photo-none").is_visible()
    assert page.inner_text("#card-advice").startswith("未见异常")
    shot(page, "home-minor-no-photo")

    box = page.locator("#photo").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()  # a short press does nothing
    page.wait_for_timeout(1200)  # the press itself (1.2 s of the 3 s)
    page.mouse.up()
    page.wait_for_function("() => window.scanbook.pressMs !== undefined")  # the page saw it end
    assert page.evaluate("window.scanbook.pressMs") < 3000
    assert not page.locator("#retake").is_visible()
    assert page.evaluate("window.scanbook.pressStarted") == 1

    page.mouse.down()  # held for 3 seconds: the retake dialog opens by itself
    page.wait_for_selector("#retake[open]", timeout=10_000)
    page.mouse.up()
    # By the page's clock: the test's adds the browser's round trips (seconds under load).
    held = page.evaluate("window.scanbook.heldMs")
    assert 2990 <= held < 4000, held
    assert page.evaluate("window.scanbook.retakeOpened") == 1
    camera = page.locator("#photo-camera")
    assert camera.get_attribute("capture") == "user" and "image/" in camera.get_attribute("accept")
    assert page.locator("label[for=photo-camera]").is_visible()
    shot(page, "home-retake-dialog")

    page.set_input_files("#photo-file", files=[{"name": "me.png", "mimeType": "image/png",
                                                "buffer": png()}])
    page.wait_for_function("() => window.scanbook.photoUploads === 1")
    page.wait_for_selector("#retake", state="hidden")
    img = page.locator("#photo-img")
    assert img.is_visible() and "/api/me/photo?v=" in img.get_attribute("src")
    # the new src loads after the upload's answer: wait for the picture itself
    page.wait_for_function("() => document.getElementById('photo-img').naturalWidth > 0")
    assert page.locator("#photo-none").is_hidden()
    shot(page, "home-minor-with-photo")
    # The photo stays after a reload (it is the card's, not the page's).
    page.reload()
    page.wait_for_function("() => document.getElementById('photo-img').naturalWidth > 0")


def test_notice_bar_live_status_notice_proxy_check_and_message(server, client, redis_client,
                                                               run_jobs, engine, people,
                                                               new_page):
    assert client.post("/api/admin/notices", headers=ADMIN,
                       json={"text": "本市进入公共场所须扫码登记"}).status_code == 201
    me = register(client, "张三丰", PHONE)
    friend = people.make("王小明")
    page = new_page()
    sign_in_by_sms(page, server.url, redis_client, PHONE)
    assert "本市进入公共场所须扫码登记" in page.inner_text("#notice-bar")  # rendered at once
    page.wait_for_selector("body[data-me-feed=ready]")

    # An announcement arrives live in the 通知栏.
    assert client.post("/api/admin/notices", headers=ADMIN,
                       json={"text": "今晚核酸检测点延长服务至22时"}).status_code == 201
    page.wait_for_function("() => window.scanbook.notices === 1")
    assert page.locator("#notices .bar-item").first.inner_text().startswith("今晚核酸检测点")

    # A status change shows as a notice at once, and the card follows.
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": me["id_number"], "status": "yellow", "reason": "密接人员"}]})
    assert r.status_code == 202
    run_jobs()
    page.wait_for_selector("#status-toast:not([hidden])")
    toast = page.inner_text("#status-toast")
    assert "健康状态已更新" in toast and "居家观察" in toast and "密接人员" in toast
    page.wait_for_selector("#my-card.status-yellow")
    assert "居家观察" in page.inner_text("#card-advice")
    assert page.evaluate("window.scanbook.statusNotices") == 1
    shot(page, "home-status-notice", full_page=True)

    # 他人代查
    page.fill("#proxy-name", "王小明")
    page.fill("#proxy-id", friend["id_number"])
    page.click("#proxy-form button[type=submit]")
    page.wait_for_selector("#proxy-card")
    assert page.get_attribute("#proxy-card", "data-status") == "green"
    assert page.inner_text("#proxy-name-masked") == "王**"
    assert page.inner_text("#proxy-status") == "未见异常"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", page.inner_text("#proxy-at"))
    first = page.inner_text("#proxy-clock")  # a live clock: a screenshot is not a check
    page.wait_for_function(
        f"() => document.getElementById('proxy-clock').textContent !== {first!r}")
    page.locator("#proxy-card").scroll_into_view_if_needed()
    shot(page, "proxy-card-green-390")
    # A red friend's card says 请勿入场 and what to do, like one's own card.
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": friend["id_number"], "status": "red", "reason": "确诊病例密接"}]})
    assert r.status_code == 202
    run_jobs()
    page.click("#proxy-form button[type=submit]")
    page.wait_for_selector("#proxy-card[data-status=red]")
    assert page.inner_text("#proxy-entry") == "请勿入场"
    assert "疾控中心" in page.inner_text("#proxy-advice")
    assert "12320" in page.inner_text("#proxy-contact")
    page.locator("#proxy-card").scroll_into_view_if_needed()
    shot(page, "proxy-card-red-390")

    # Every mistake is named exactly (checked in the page before anything is sent).
    good = friend["id_number"]
    wrong_check = good[:17] + ("0" if good[17] != "0" else "1")
    for name, number, says in [
            ("", good, "请填写姓名。"),
            ("王小明", "", "请填写身份证号。"),
            ("王小明", good[:17], "身份证号应为18位，现在是17位。"),
            ("王小明", good[:16] + "A" + good[17], "身份证号前17位只能是数字。"),
            ("王小明", "99" + good[2:], "地区码99不存在"),
            ("王小明", good[:10] + "13" + good[12:], "出生日期"),
            ("王小明", wrong_check, "身份证号校验位（最后一位）不正确，请逐位核对。")]:
        page.fill("#proxy-name", name)
        page.fill("#proxy-id", number)
        page.click("#proxy-form button[type=submit]")
        page.wait_for_selector("#proxy-error")
        assert says in page.inner_text("#proxy-error"), (number, page.inner_text("#proxy-error"))
    shot(page, "proxy-check-digit-390")
    page.fill("#proxy-name", "王小明")
    page.fill("#proxy-id", good)
    page.fill("#proxy-name", "王大明")
    page.click("#proxy-form button[type=submit]")
    page.wait_for_selector("#proxy-error:has-text('不匹配')")
    assert "不匹配" in page.inner_text("#proxy-result")

    # 留言栏
    page.fill("#message-text", "地铁站入口排队太长，建议增加扫码点")
    page.click("#message-form button[type=submit]")
    page.wait_for_selector("#message-status.notice-ok")
    assert page.input_value("#message-text") == ""
    with Session(engine) as session:
        texts = [m.text for m in session.exec(select(Message)).all()]
    assert texts == ["地铁站入口排队太长，建议增加扫码点"]
    shot(page, "home-forms", full_page=True)

    # The English switch: the same home, every label in English.
    page.click("header a.lang")
    page.wait_for_selector("html[lang=en]")
    assert page.inner_text("#notice-bar-h") == "Notices"
    assert page.inner_text("#card-status") == "Home observation"
    assert page.inner_text("#proxy-h") == "Check for someone else"
    assert page.inner_text("#message-h") == "Message the health authority"
    assert "Home observation" in page.inner_text("#card-advice")
    shot(page, "home-en", full_page=True)


def test_an_offline_scan_is_queued_then_delivered(server, client, redis_client,
                                                 venue_with_logbook, new_page):
    owner, venue, logbook = venue_with_logbook
    register(client, "欧阳娜娜", PHONE)
    page = new_page()
    # The network goes as the scan page opens: its check-in cannot get through.
    page.route("**/api/scan", lambda route: route.abort("internetdisconnected"))
    sign_in_by_sms(page, server.url, redis_client, PHONE, f"/s/{logbook['token']}")
    page.wait_for_selector("#result[data-status=pending]")
    page.unroute("**/api/scan")
    page.context.set_offline(True)
    assert page.inner_text("#result-status") == "待发送"
    assert "网络恢复后自动发送" in page.inner_text("#result-note")
    assert page.inner_text("#result-venue") == venue["name"]
    assert page.inner_text("#result-name") == "欧阳**"
    stored = page.evaluate("JSON.parse(localStorage.getItem('scanbook.pending.v1'))")
    assert [item["code"] for item in stored] == [logbook["token"]]
    shot(page, "scan-offline-pending")
    listed = client.get(f"/api/logbooks/{logbook['id']}/checkins", headers=owner["headers"])
    assert listed.json()["items"] == []  # nothing reached the server

    page.wait_for_timeout(2500)  # the network stays away a while
    page.context.set_offline(False)  # → the `online` event sends it
    page.wait_for_selector("#result[data-status=green]")
    assert page.inner_text("#result-note") == "网络已恢复，登记已补发成功"
    assert page.evaluate("localStorage.getItem('scanbook.pending.v1')") == "[]"
    assert page.evaluate("window.scanbook.delivered") == 1
    shot(page, "scan-offline-delivered")
    items = client.get(f"/api/logbooks/{logbook['id']}/checkins",
                       headers=owner["headers"]).json()["items"]
    assert len(items) == 1 and items[0]["name"] == "欧阳**"
    # Recorded at the time of the scan, not when the network came back.
    # The time the page stored with the queued scan, not a wall-clock guess in the test (the
    # test's steps between the scan and reading the clock take seconds on a loaded machine).
    at = parse_iso(items[0]["at"], "at").timestamp()
    scanned = parse_iso(stored[0]["scanned_at"], "scanned_at").timestamp()
    assert abs(at - scanned) < 0.01, at - scanned
