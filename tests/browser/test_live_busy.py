"""The live page at a busy door on a phone (390×844): whatever the number of open alerts, the
newest arrival stays in the first screen (older alerts collapse into a stack with a count),
and every alert says what staff must do."""

from __future__ import annotations

from tests.browser.conftest import shot
from tests.browser.test_live import ROWS, open_live, set_status


def scan(client, person, code):
    r = client.post("/api/scan", headers=person["headers"], json={"code": code})
    assert r.status_code == 201, r.text


def test_many_open_alerts_keep_the_newest_arrival_on_the_first_screen(
        server, client, people, run_jobs, venue_with_logbook, new_page):
    owner, venue, logbook = venue_with_logbook
    live = open_live(new_page, server.url, owner, venue["id"])
    visitors = []
    for name, status, kind in [("王小明", "yellow", None), ("张三丰", "red", None),
                               ("司马光", "popup", "travel"), ("欧阳娜娜", "popup", "risk_area"),
                               ("李雷", "red", None)]:
        person = people.make(name)
        set_status(client, run_jobs, person, status, **({"popup_kind": kind} if kind else {}))
        visitors.append(person)
    for person in visitors:
        scan(client, person, logbook["token"])
    live.wait_for_function("() => window.scanbook.openAlerts === 5")
    # The newest alert is the full card; the four older ones are one line with a count.
    assert live.locator("#pinned .alert-card").count() == 1
    assert "李*" in live.inner_text("#pinned .alert-card")
    assert live.inner_text("#alert-stack summary") == "另有 4 条未确认的异常"
    todo = live.inner_text("#pinned .alert-card .alert-todo")
    assert "不得入场" in todo and "疾控中心" in todo  # red: what to do, whom to tell

    newcomer = people.make("韩梅梅")
    scan(client, newcomer, logbook["token"])
    live.wait_for_selector(f"{ROWS}[data-status=green]")
    newest = live.locator(ROWS).first
    assert newest.locator(".name").inner_text() == "韩**"
    box = newest.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 844, box  # in the first screen
    shot(live, "live-busy-390")

    # Each status's instruction, in the stack too (yellow, red, both popups).
    live.click("#alert-stack summary")
    stacked = live.locator("#alert-stack li.stacked")
    assert stacked.count() == 4
    joined = "\n".join(row.inner_text() for row in stacked.all())
    assert "居家观察" in joined and "继续" in joined and "向所在社区报告" in joined
    shot(live, "live-busy-stack-390")
    # Acknowledging one older alert leaves the newest card and three in the stack.
    stacked.first.locator("button").click()
    assert live.inner_text("#alert-stack summary") == "另有 3 条未确认的异常"
    live.click("#ack-all")
    assert live.locator("#alert-stack").count() == 0
    assert live.locator("#pinned .alert-card").count() == 1
    live.set_viewport_size({"width": 1920, "height": 1080})
    shot(live, "live-busy-1920")


def test_a_suspended_registrar_sees_why_and_what_next_instead_of_forms(
        server, client, people, run_jobs, venue_with_logbook, new_page):
    from tests.browser.conftest import audit, sign_in
    from tests.conftest import ADMIN

    owner, venue, _logbook = venue_with_logbook
    r = client.post("/api/admin/violations", headers=ADMIN,
                    json={"citizen_id": owner["id"], "reason": "未核验来访者健康码"})
    assert r.status_code == 202
    run_jobs()
    for lang, size in (("zh", None), ("en", {"width": 1920, "height": 1080})):
        page = new_page(**({"viewport": size, "is_mobile": False, "has_touch": False}
                           if size else {}))
        page.goto(f"{server.url}/?lang={lang}")
        sign_in(page, server.url, owner["token"], f"/venues/{venue['id']}")
        standing = page.locator("#standing")
        assert standing.is_visible() and standing.get_attribute("data-kind") == "suspended"
        assert "未核验来访者健康码" in standing.inner_text()
        assert page.locator("#logbook-form").count() == 0  # no form that would be refused
        assert page.locator("#proxy-checkin-form").count() == 0  # every logbook suspended
        assert page.locator("#proxy-checkin-none").is_visible()
        assert ("12345" in standing.inner_text())
        # Delete sits in its own row, apart from the exports.
        row = page.locator("li.logbook").first
        delete = row.locator(".delete-logbook").bounding_box()
        export = row.get_by_text("CSV").bounding_box()
        assert delete["y"] > export["y"] + export["height"]
        assert audit(page) == []
        shot(page, f"venue-suspended-{'390' if size is None else '1920'}", full_page=True)
