"""The control room's wallboard in a real browser (1920×1080): an hour of check-ins seeded at
known rates across districts, then real scans that the board shows within a second or two —
levels, the most crowded venues, advice, the chart, the masked ticker — and reconnecting
after the server restarts."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from models.tables import Checkin
from tests.browser.conftest import shot, sign_in
from tests.conftest import ADMIN
from tests.servers import free_port, start_server

SCREEN = {"viewport": {"width": 1920, "height": 1080}, "is_mobile": False,
          "has_touch": False, "device_scale_factor": 1}
TOKEN = ADMIN["Authorization"].split(" ", 1)[1]
# name, district, capacity, check-ins a minute over the last 15 minutes
VENUES = [
    ("北京南站", "丰台区", 500, 14),  # fast: more codes needed
    ("中关村图书大厦", "海淀区", 80, 5),  # 75 in 15 min of 80: crowded
    ("西单大悦城", "西城区", 100, 6.4),  # crowded
    ("三里屯太古里", "朝阳区", 120, 4.7),  # busy
    ("朝阳大悦城", "朝阳区", 300, 4),
    ("王府井百货", "东城区", None, 2),  # no capacity: by rate
]
ABNORMAL = [("yellow", None), ("red", None), ("popup", "travel"), ("popup", "risk_area")]


def _venue(client, owner, name, district, capacity):
    body = {"name": name, "address": f"{district}某路1号", "district": district,
            "category": "mall"}
    if capacity:
        body["capacity"] = capacity
    venue = client.post("/api/venues", headers=owner["headers"], json=body).json()
    book = client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                       json={"label": "正门"}).json()
    return venue, book


def seed_hour(client, engine, people) -> dict[str, dict]:
    """An hour of arrivals: steady over the last 15 minutes at each venue's rate, a morning
    wave before that, one in forty abnormal."""
    owner = people.make("李四")
    now = datetime.now(UTC)
    rng = random.Random(7)
    rows, made = [], {}
    surnames = "王李张刘陈杨赵黄周吴"
    for name, district, capacity, rate in VENUES:
        venue, book = _venue(client, owner, name, district, capacity)
        made[name] = venue
        for minute in range(60):
            wave = 0.55 + 0.45 * math.sin(minute / 9.0)
            count = rate if minute < 15 else rate * wave
            for _ in range(int(count) + (rng.random() < count % 1)):
                abnormal = rng.random() < 1 / 40
                status, popup = rng.choice(ABNORMAL) if abnormal else ("green", None)
                rows.append({"venue_id": venue["id"], "logbook_id": book["id"],
                             "citizen_id": owner["id"], "via": "scan", "status": status,
                             "popup_kind": popup, "alert": abnormal, "minor": False,
                             "name_masked": rng.choice(surnames) + "*" * rng.choice((1, 2)),
                             "id_masked": "11**************" + f"{rng.randrange(100):02d}",
                             "at": now - timedelta(minutes=minute, seconds=rng.uniform(1, 59))})
    with engine.begin() as conn:
        conn.execute(insert(Checkin.__table__), rows)
    return made


def open_board(new_page, base_url, path="/wallboard"):
    page = new_page(**SCREEN)
    sign_in(page, base_url, TOKEN, path)
    page.wait_for_function("() => window.scanbook.frames > 0 && window.scanbook.connected")
    return page


def test_the_wallboard_shows_crowding_and_updates_after_scans(server, client, people, engine,
                                                              run_jobs, new_page):
    seeded = seed_hour(client, engine, people)
    page = open_board(new_page, server.url)
    page.wait_for_selector("#wb-top-list li")
    frame = page.evaluate("window.scanbook.last")
    assert page.inner_text("#kpi-rate") == str(frame["scans_per_min"])
    assert page.inner_text("#kpi-alerts") == str(frame["alerts_last_hour"])
    levels = {v["name"]: v["level"] for v in frame["venues"]}
    assert levels["中关村图书大厦"] == "crowded" and levels["西单大悦城"] == "crowded"
    assert levels["三里屯太古里"] == "busy" and levels["北京南站"] == "normal"
    top = page.locator("#wb-top-list li")
    assert top.first.get_attribute("data-level") == "crowded"
    assert "拥挤" in top.first.inner_text()
    districts = page.locator("#wb-district-table tbody tr")
    assert districts.count() == 5
    assert districts.first.get_attribute("class") == "level-crowded"
    advice = page.locator(f"#wb-advice-list li[data-venue-id='{seeded['北京南站']['id']}']")
    assert advice.get_attribute("data-kind") == "more_codes"
    assert "增设 1 个登记码" in advice.inner_text() and "一米线" in advice.inner_text()
    assert page.locator("#wb-chart svg rect.bar").count() >= 55
    assert page.locator("#wb-ticker-list li").count() == len(frame["ticker"]) > 0
    assert page.locator("#wb-venue-grid li").count() == len(VENUES)
    page.wait_for_timeout(300)  # let the fonts settle for the picture
    shot(page, "wallboard")

    # Real scans: a small clinic fills up, and a red-status visitor's arrival hits the ticker.
    owner = people.make("钱七")
    clinic, book = _venue(client, owner, "社区卫生服务中心", "朝阳区", 2)
    red = people.make("上官婉儿")
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": red["id_number"], "status": "red", "reason": "确诊病例密接"}]})
    assert r.status_code == 202
    run_jobs()
    before = page.evaluate("window.scanbook.frames")
    for person in (people.make("张三丰"), red):
        assert client.post("/api/scan", headers=person["headers"],
                           json={"code": book["token"]}).status_code == 201
    page.wait_for_selector(f"#wb-top-list li[data-venue-id='{clinic['id']}'][data-level=crowded]",
                           timeout=5000)
    assert page.evaluate("window.scanbook.frames") > before
    first_tick = page.locator("#wb-ticker-list li").first
    assert "上官**" in first_tick.inner_text() and "社区卫生服务中心" in first_tick.inner_text()
    assert "集中观察" in first_tick.inner_text()
    assert red["id_number"] not in page.content() and "上官婉儿" not in page.content()
    clinic_tile = page.locator(f"#wb-venue-grid li[data-venue-id='{clinic['id']}']")
    assert clinic_tile.get_attribute("data-level") == "crowded"
    assert "2/2" in clinic_tile.inner_text()
    shot(page, "wallboard-after-scans")

    page.goto(f"{server.url}/wallboard?lang=en")
    page.wait_for_function("() => window.scanbook.frames > 0")
    page.wait_for_selector("#wb-top-list li")
    assert page.inner_text(".wb-title") == "Venue crowding"
    assert "Crowded" in page.inner_text("#wb-top-list")
    page.wait_for_timeout(300)
    shot(page, "wallboard-en")


def test_the_wallboard_reconnects_after_a_restart(client, people, venue_with_logbook,
                                                 new_page):
    _owner, venue, book = venue_with_logbook
    port = free_port()
    server = start_server(port=port)
    try:
        page = open_board(new_page, server.url)
        server.stop()
        page.wait_for_function("() => !window.scanbook.connected")
        page.wait_for_selector("#wb-conn[data-state=reconnecting]")
        assert "stale" in page.get_attribute("body", "class")
        shot(page, "wallboard-reconnecting")
        person = people.make("孙八")
        assert client.post("/api/scan", headers=person["headers"],
                           json={"code": book["token"]}).status_code == 201
        server = start_server(port=port)
        page.wait_for_function("() => window.scanbook.connected", timeout=30_000)
        page.wait_for_selector(f"#wb-top-list li[data-venue-id='{venue['id']}']")
        assert page.get_attribute("#wb-conn", "data-state") == "connected"
        assert "stale" not in (page.get_attribute("body", "class") or "")
    finally:
        server.stop()
