"""反扫 end to end in Chromium with a fake camera: the visitor's page shows a personal QR code;
the registrar's live page scans it (the camera is a generated .y4m of that code), the visitor
is checked in via "registrar_scan" and both pages show it. The decoder is the vendored ZXing
polyfill (headless Chromium on Linux has no native BarcodeDetector): nothing may be fetched
from anywhere but the server. Also the live page's 在场/容量 and 已满 banner."""

from __future__ import annotations

import pytest
import qrcode
from PIL import Image

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, WAIT_MS, shot, sign_in
from tests.conftest import ADMIN

W, H = 640, 480


def write_y4m(path, text: str, frames: int = 10) -> None:
    """A short video (YUV 4:2:0) whose every frame is the QR code of `text` on white."""
    qr = qrcode.QRCode(border=4, box_size=8)
    qr.add_data(text)
    qr.make(fit=True)
    code = qr.make_image().convert("L").resize((420, 420), Image.NEAREST)
    frame = Image.new("L", (W, H), 255)
    frame.paste(code, ((W - 420) // 2, (H - 420) // 2))
    luma = frame.tobytes()
    chroma = bytes([128]) * (W // 2) * (H // 2)
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{W} H{H} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + luma + chroma + chroma)


@pytest.fixture
def camera_browser(browser, tmp_path):
    """camera_browser(text) → a Chromium whose camera shows the QR code of `text`."""
    launched = []

    def launch(text: str):
        video = tmp_path / "qr.y4m"
        write_y4m(video, text)
        other = browser.browser_type.launch(
            executable_path=CHROMIUM, headless=True,
            args=[*CHROMIUM_ARGS, "--use-fake-device-for-media-stream",
                  "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={video}"])
        launched.append(other)
        return other

    yield launch
    for other in launched:
        other.close()


def test_registrar_scans_a_visitors_personal_code(server, client, people, run_jobs,
                                                  camera_browser):
    owner = people.make("李四")
    venue = client.post("/api/venues", headers=owner["headers"], json={
        "name": "小面馆", "address": "某路1号", "district": "朝阳区", "category": "restaurant",
        "capacity": 1}).json()
    book = client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                       json={"label": "正门"}).json()
    assert book["state"] == "active"
    visitor = people.make("欧阳娜娜")
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": visitor["id_number"], "status": "yellow", "reason": "密接"}]})
    assert r.status_code == 202
    run_jobs()
    code = client.get("/api/me/code", headers=visitor["headers"]).json()["code"]
    chromium = camera_browser(code)

    # The visitor's page shows their (own, changing) code and waits for a registrar.
    phone = chromium.new_context(**PHONE).new_page()
    phone.set_default_timeout(WAIT_MS)
    sign_in(phone, server.url, visitor["token"], "/me/code")
    phone.wait_for_selector("#code-qr:not([hidden])")
    assert phone.evaluate("window.scanbook.code").startswith("sbp_")
    shot(phone, "personal-code")

    registrar = chromium.new_context(**{**PHONE, "viewport": {"width": 800, "height": 1000}})
    page = registrar.new_page()
    page.set_default_timeout(WAIT_MS)
    elsewhere = []
    page.on("request", lambda req: None if req.url.startswith((server.url, "data:", "blob:"))
            else elsewhere.append(req.url))
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, server.url, owner["token"], f"/venues/{venue['id']}/live")
    page.wait_for_function("() => window.scanbook && window.scanbook.connected")
    assert page.inner_text("#occupancy-count") == "在场 0 / 容量 1"
    assert page.locator("#full-banner").is_hidden()
    page.click("#visitor-scan summary")
    page.click("#camera-toggle")
    page.wait_for_function("() => window.scanbook.scans && window.scanbook.scans.length > 0",
                           timeout=30_000)
    [scan] = page.evaluate("window.scanbook.scans")
    assert scan["status"] == 201, scan
    assert (scan["body"]["via"], scan["body"]["status"]) == ("registrar_scan", "yellow")
    assert page.inner_text("#scan-result").startswith("已为访客登记 · 居家观察")
    # the feed brings the arrival, then the count: full at capacity 1
    page.wait_for_selector(f'#arrivals [data-id="{scan["body"]["id"]}"]')
    page.wait_for_selector("#full-banner:not([hidden])")
    assert page.inner_text("#occupancy-count") == "在场 1 / 容量 1"
    assert page.inner_text("#full-banner") == "已满 — 请暂停入场"
    assert "限流" in page.inner_text("#venue-advice")  # crowded: limit entry
    shot(page, "live-visitor-scanned-full")
    page.click("#camera-toggle")  # stop the camera

    # The visitor's page shows the check-in the registrar made, with their status.
    phone.wait_for_selector("#code-done:not([hidden])")
    assert phone.inner_text("#done-status") == "居家观察"
    assert phone.inner_text("#done-venue") == "小面馆"
    assert phone.locator("#done-full").is_visible()
    shot(phone, "personal-code-checked-in")

    # The visitor leaves: the count drops, the banner goes.
    assert client.post("/api/me/checkout", headers=visitor["headers"]).status_code == 200
    page.wait_for_selector("#full-banner", state="hidden")
    assert page.inner_text("#occupancy-count") == "在场 0 / 容量 1"
    page.wait_for_selector(f'#arrivals .left[data-id="{scan["body"]["id"]}"]')
    assert not elsewhere, elsewhere  # the decoder came from the server, no CDN
    assert not errors, errors
