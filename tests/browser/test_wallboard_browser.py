"""The control room's wallboard in a real browser (1920×1080): an hour of check-ins seeded at
known rates across districts, then real scans that the board shows within a second or two —
levels, the district map, the ranking, advice, the masked ticker —; read from five metres (no
text under 28 px, names not cut off when they fit); 500 venues ranked, filtered by district
and paged; and reconnecting after the server restarts."""

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
STAY = timedelta(minutes=15)
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
    wave before that, one in forty abnormal. Each visit lasts STAY: the people inside (what
    the levels measure) are the arrivals of the last STAY."""
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
                             "at": (at := now - timedelta(minutes=minute,
                                                          seconds=rng.uniform(1, 59))),
                             "left_at": at + STAY if at + STAY <= now else None})
    with engine.begin() as conn:
        conn.execute(insert(Checkin.__table__), rows)
    return made


# Text a person reads from five metres: every visible text node's font at least 28 px (SVG
# text scaled by its drawing), and a one-line name that fits its box is not cut off.
_READABLE = """() => {
  const problems = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const e = n.parentElement;
    if (!n.textContent.trim() || e.closest("[hidden], title, script, style")) continue;
    const box = e.getBoundingClientRect();
    if (!box.width || !box.height || getComputedStyle(e).visibility === "hidden") continue;
    let size = parseFloat(getComputedStyle(e).fontSize);
    const svg = e.closest("svg");
    if (svg) size *= svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    const what = `${e.className.baseVal ?? e.className} ${n.textContent.trim().slice(0, 20)}`;
    if (size < 27.5) problems.push(`${size.toFixed(1)}px ${what}`);
  }
  for (const name of document.querySelectorAll(".top-name, .tick-who")) {
    if (name.scrollWidth > name.clientWidth + 1 && name.textContent.length <= 12)
      problems.push(`cut off: ${name.textContent}`);
  }
  for (const tile of document.querySelectorAll("#wb-map g.map-district")) {
    const box = tile.querySelector("rect").getBBox();
    for (const text of tile.querySelectorAll("text")) {
      const b = text.getBBox();
      if (b.x < box.x || b.x + b.width > box.x + box.width) problems.push(
        `cut off: ${text.textContent}`);
    }
  }
  return problems;
}"""


def readable(page) -> list[str]:
    return page.evaluate(_READABLE)


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
    assert top.count() == len(VENUES)  # every active venue fits on the first page
    # The map: all sixteen districts, coloured by their most crowded venue.
    tiles = page.locator("#wb-map g.map-district")
    assert tiles.count() == 16
    level_of = {tiles.nth(i).get_attribute("data-district"):
                tiles.nth(i).get_attribute("data-level") for i in range(16)}
    assert level_of["海淀区"] == "crowded" and level_of["西城区"] == "crowded"
    assert level_of["朝阳区"] == "busy" and level_of["丰台区"] == "normal"
    assert level_of["延庆区"] == "idle"  # no arrivals there
    advice = page.locator(f"#wb-advice-list li[data-venue-id='{seeded['北京南站']['id']}']")
    assert advice.get_attribute("data-kind") == "more_codes"
    assert "增设 1 个登记码" in advice.inner_text() and "一米线" in advice.inner_text()
    assert page.locator("#wb-ticker-list li").count() > 0
    page.wait_for_timeout(300)  # let the fonts settle for the picture
    assert readable(page) == []
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
    clinic_row = page.locator(f"#wb-top-list li[data-venue-id='{clinic['id']}']")
    assert "2/2" in clinic_row.inner_text()
    shot(page, "wallboard-after-scans")

    page.goto(f"{server.url}/wallboard?lang=en")
    page.wait_for_function("() => window.scanbook.frames > 0")
    page.wait_for_selector("#wb-top-list li")
    assert page.inner_text(".wb-title") == "Venue crowding"
    assert "Crowded" in page.inner_text("#wb-top-list")
    page.wait_for_timeout(300)
    assert readable(page) == []  # English names are longer: still 28 px, still whole
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


def test_the_wallboard_holds_500_venues_with_a_district_filter_and_pages(
        server, client, people, engine, new_page):
    """500 active venues across the sixteen districts: ranked, a page at a time (rotating or
    by hand), filtered by district from the select or the map; the text stays readable."""
    from models.tables import Logbook, Venue

    owner = people.make("李四")
    districts = ["东城区", "西城区", "朝阳区", "海淀区", "丰台区", "石景山区", "门头沟区", "房山区",
                 "通州区", "顺义区", "昌平区", "大兴区", "怀柔区", "平谷区", "密云区", "延庆区"]
    now = datetime.now(UTC)
    rng = random.Random(11)
    with engine.begin() as conn:
        venue_ids = [conn.execute(insert(Venue.__table__).values(
            name=f"便民超市{i:03d}号店", address="某路", district=districts[i % 16],
            category="shop", capacity=rng.choice((20, 40, 80)), owner_id=owner["id"],
            created_at=now)).inserted_primary_key[0] for i in range(500)]
        book_ids = [conn.execute(insert(Logbook.__table__).values(
            venue_id=v, label="正门", code=f"c{v:08d}wallboard", state="active",
            created_by=owner["id"], created_at=now, state_at=now)).inserted_primary_key[0]
            for v in venue_ids]
        rows = [{"venue_id": v, "logbook_id": b, "citizen_id": owner["id"], "via": "scan",
                 "status": "green", "popup_kind": None, "alert": False, "minor": False,
                 "name_masked": "王*", "id_masked": "11**************01",
                 "at": now - timedelta(minutes=rng.uniform(0.5, 14))}
                for v, b in zip(venue_ids, book_ids, strict=True)
                for _ in range(rng.randrange(1, 40))]
        conn.execute(insert(Checkin.__table__), rows)
    page = open_board(new_page, server.url)
    page.wait_for_function("() => window.scanbook.page && window.scanbook.page.total === 500")
    state = page.evaluate("window.scanbook.page")
    assert state["rows"] >= 9 and state["pages"] == math.ceil(500 / state["rows"])
    assert page.inner_text("#wb-page").startswith(f"第 1/{state['pages']} 页")
    loads = [v["load"] for v in page.evaluate("window.scanbook.last.venues")]
    assert loads == sorted(loads, reverse=True) and len(loads) == 500
    # The list fills the panel: the last row ends near the bottom of the list's box.
    gap = page.evaluate("""() => { const l = document.getElementById('wb-top-list');
        return l.getBoundingClientRect().bottom
          - l.lastElementChild.getBoundingClientRect().bottom; }""")
    assert 0 <= gap < 80, gap
    assert readable(page) == []
    shot(page, "wallboard-500-1920")

    page.click("#wb-next")
    page.wait_for_function("() => window.scanbook.page.index === 1")
    first_on_two = int(page.locator("#wb-top-list li .rank").first.inner_text())
    assert first_on_two == state["rows"] + 1

    # Filter by district: the select, then the map.
    page.select_option("#wb-district-filter", "海淀区")
    page.wait_for_function("() => window.scanbook.page.filter === '海淀区'")
    assert page.evaluate("window.scanbook.page.total") == 500 // 16 + (3 < 500 % 16)
    assert {page.locator("#wb-top-list li").nth(i).get_attribute("data-district")
            for i in range(page.locator("#wb-top-list li").count())} == {"海淀区"}
    assert page.get_attribute("#wb-map g[data-district='海淀区']", "aria-pressed") == "true"
    shot(page, "wallboard-haidian-1920")
    page.click("#wb-map g[data-district='延庆区']")
    page.wait_for_function("() => window.scanbook.page.filter === '延庆区'")
    assert page.input_value("#wb-district-filter") == "延庆区"
    page.click("#wb-map g[data-district='延庆区']")  # again: the whole city
    page.wait_for_function("() => window.scanbook.page.filter === ''")
