"""Server-rendered pages through the real app: sign-in, the scan page in each logbook state,
the poster, the live page and who may see them, the language switch."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import quote

import pytest
import zxingcpp
from PIL import Image, ImageDraw
from sqlmodel import Session

from models.tables import Logbook
from models.venues import set_logbook_state
from tests.conftest import ADMIN, add_co_registrar
from web import pages_console


def sign_in(client, person_or_token, next_path="/"):
    token = person_or_token if isinstance(person_or_token, str) else person_or_token["token"]
    r = client.post("/login", data={"token": token, "next": next_path}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == next_path, r.text
    return r


def live_config(text: str) -> dict:
    found = re.search(r'<script type="application/json" id="live-config">(.*?)</script>', text)
    assert found, "the live page carries its configuration"
    return json.loads(found.group(1))


# --- sign-in -------------------------------------------------------------------------------

def test_login_page_keeps_next_and_signs_in(client, people):
    visitor = people.make()
    r = client.get("/login?next=/s/abc")
    assert r.status_code == 200
    assert 'name="token"' in r.text and 'value="/s/abc"' in r.text
    sign_in(client, visitor, "/s/abc")
    assert client.get("/api/me").json()["id"] == visitor["id"]  # the cookie authenticates


def test_login_failure_keeps_next(client):
    r = client.post("/login", data={"token": "wrong", "next": "/venues/3/live"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?error=1&next=" + quote("/venues/3/live", safe="")
    page = client.get(r.headers["location"])
    assert 'id="login-error"' in page.text and 'value="/venues/3/live"' in page.text
    assert client.get("/api/me").status_code == 401


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)", ""])
def test_login_never_redirects_off_site(client, people, target):
    visitor = people.make()
    r = client.post("/login", data={"token": visitor["token"], "next": target},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_official_token_signs_in_as_official(client):
    sign_in(client, ADMIN["Authorization"].split()[1])
    r = client.get("/")
    assert "已以卫生健康部门身份登录" in r.text and "home.js" not in r.text


def test_logout_ends_the_session(client, people):
    sign_in(client, people.make())
    r = client.post("/logout", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert client.get("/api/me").status_code == 401
    sign_in(client, people.make("王五"))
    client.get("/logout")
    assert client.get("/api/me").status_code == 401


# --- home ------------------------------------------------------------------------------------

def test_home_signed_out_links_to_sign_in(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'id="home-sign-in"' in r.text and 'href="/login"' in r.text
    assert "home.js" not in r.text


def test_home_signed_in_loads_card_and_venues(client, people):
    sign_in(client, people.make())
    r = client.get("/")
    assert 'id="my-card"' in r.text and 'id="my-venues"' in r.text
    script = re.search(r'src="(/static/home\.js\?v=\w+)"', r.text).group(1)
    js = client.get(script)
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "/api/me" in js.text and "/api/venues" in js.text


# --- the scan page ---------------------------------------------------------------------------

def test_scan_page_signed_in_offers_the_button(client, people, venue_with_logbook):
    _owner, venue, logbook = venue_with_logbook
    sign_in(client, people.make())
    r = client.get(f"/s/{logbook['token']}")
    assert r.status_code == 200
    assert venue["name"] in r.text and "东门" in r.text
    assert 'id="check-in"' in r.text and f'data-code="{logbook["token"]}"' in r.text
    assert "/static/scan.js" in r.text
    assert r.headers["cache-control"] == "no-store"


def test_scan_page_signed_out_links_to_sign_in_and_back(client, venue_with_logbook):
    _owner, _venue, logbook = venue_with_logbook
    r = client.get(f"/s/{logbook['token']}")
    assert r.status_code == 200
    assert 'id="check-in"' not in r.text
    assert html.escape(f"/login?next={quote('/s/' + logbook['token'], safe='')}") in r.text


def test_scan_page_unknown_code(client, people):
    sign_in(client, people.make())
    r = client.get("/s/not-a-real-code")
    assert r.status_code == 404
    assert "登记码无效" in r.text and 'id="check-in"' not in r.text


def test_scan_page_deleted_code_says_so(client, people, venue_with_logbook):
    owner, _venue, logbook = venue_with_logbook
    assert client.delete(f"/api/logbooks/{logbook['id']}",
                         headers=owner["headers"]).status_code == 204
    sign_in(client, people.make())
    r = client.get(f"/s/{logbook['token']}")
    assert r.status_code == 410
    assert "该登记簿已被删除" in r.text and 'data-state="deleted"' in r.text
    assert 'id="check-in"' not in r.text and "scan.js" not in r.text


@pytest.mark.parametrize(("state", "zh"), [("suspended", "该登记簿已暂停使用"),
                                           ("revoked", "该登记簿已被撤销")])
def test_scan_page_suspended_or_revoked(client, engine, people, venue_with_logbook, state, zh):
    _owner, _venue, logbook = venue_with_logbook
    with Session(engine) as session:
        set_logbook_state(session, session.get(Logbook, logbook["id"]), state, "违反登记规定")
        session.commit()
    sign_in(client, people.make())
    r = client.get(f"/s/{logbook['token']}")
    assert r.status_code == 410
    assert zh in r.text and "违反登记规定" in r.text and 'id="check-in"' not in r.text
    en = client.get(f"/s/{logbook['token']}?lang=en")
    assert f"This logbook {'is suspended' if state == 'suspended' else 'has been revoked'}" in (
        en.text)


def test_scan_page_escapes_what_registrars_typed(client, people):
    owner = people.make("李四")
    venue = client.post("/api/venues", headers=owner["headers"], json={
        "name": "<script>alert(1)</script>", "address": "x", "district": "朝阳区",
        "category": "shop"}).json()
    logbook = client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                          json={"label": "<img src=x onerror=alert(2)>"}).json()
    r = client.get(f"/s/{logbook['token']}")
    assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;" in r.text
    assert "<img src=x" not in r.text


def test_scan_then_the_same_check_in_within_a_minute(client, people, venue_with_logbook):
    """The button posts {code} with the session cookie and the CSRF token (csrf.js), the
    same request as the page's."""
    _owner, venue, logbook = venue_with_logbook
    sign_in(client, people.make("欧阳娜娜"))
    client.get(f"/s/{logbook['token']}")
    csrf = {"X-CSRF-Token": client.cookies.get("scanbook_csrf", "")}
    first = client.post("/api/scan", json={"code": logbook["token"]}, headers=csrf)
    assert first.status_code == 201 and first.json()["venue"]["name"] == venue["name"]
    again = client.post("/api/scan", json={"code": logbook["token"]}, headers=csrf)
    assert again.status_code == 200
    assert again.json()["checkin_id"] == first.json()["checkin_id"]


# --- the poster ------------------------------------------------------------------------------

def _svg_to_image(svg: str) -> Image.Image:
    """Rasterise qrcode's SvgPathImage (unit squares "Mx,yH..V..H..z") to decode it."""
    size = int(re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).group(1))
    scale = 10
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    for x, y in re.findall(r"M(\d+),(\d+)H", svg):
        draw.rectangle([int(x) * scale, int(y) * scale, (int(x) + 1) * scale - 1,
                        (int(y) + 1) * scale - 1], fill=0)
    return image


def test_poster_for_a_registrar(client, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    sign_in(client, owner)
    r = client.get(f"/logbooks/{logbook['id']}/poster")
    assert r.status_code == 200
    for text in (venue["name"], "东门", "打开北京健康宝", "扫码登记", "请保持一米线距离"):
        assert text in r.text
    svg = re.search(r'<div class="sheet-qr"[^>]*>(<svg.*?</svg>)</div>', r.text, re.S).group(1)
    decoded = zxingcpp.read_barcodes(_svg_to_image(svg))
    assert [b.text for b in decoded] == [logbook["scan_url"]]
    css = client.get(re.search(r'href="(/static/style\.css\?v=\w+)"', r.text).group(1)).text
    assert "@page" in css and "A4" in css and "@media print" in css


def test_poster_in_english(client, venue_with_logbook):
    owner, _venue, logbook = venue_with_logbook
    sign_in(client, owner)
    r = client.get(f"/logbooks/{logbook['id']}/poster?lang=en")
    assert "Please keep one metre apart" in r.text and "Print poster" in r.text


def test_poster_refused_to_others(client, people, venue_with_logbook):
    _owner, _venue, logbook = venue_with_logbook
    r = client.get(f"/logbooks/{logbook['id']}/poster", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=" + quote(
        f"/logbooks/{logbook['id']}/poster", safe="")
    sign_in(client, people.make("王五"))
    r = client.get(f"/logbooks/{logbook['id']}/poster")
    assert r.status_code == 403 and "仅限该场所的登记员查看" in r.text
    assert "<svg" not in r.text and logbook["token"] not in r.text
    assert client.get("/logbooks/99999/poster").status_code == 404


# --- the live page ---------------------------------------------------------------------------

def test_live_page_for_a_registrar(client, people, run_jobs, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    green, yellow = people.make("张三丰"), people.make("王小明")
    client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": yellow["id_number"], "status": "yellow", "reason": "密接"}]})
    run_jobs()
    ids = []
    for person in (green, yellow):
        r = client.post("/api/scan", headers=person["headers"], json={"code": logbook["token"]})
        ids.append(r.json()["checkin_id"])
    sign_in(client, owner)
    r = client.get(f"/venues/{venue['id']}/live")
    assert r.status_code == 200
    assert venue["name"] in r.text and "开启提示音" in r.text and "/static/live.js" in r.text
    config = live_config(r.text)
    assert config["venue_id"] == venue["id"]
    assert config["head"] == max(ids)
    assert (config["total"], config["abnormal"]) == (2, 1)
    assert config["start_after"] < min(ids)  # a fresh page replays today's arrivals
    assert config["logbooks"][str(logbook["id"])] == {"label": "东门", "state": "active",
                                                     "reason": None}
    assert 'id="count-total">2<' in r.text and 'id="count-abnormal">1<' in r.text


def test_live_page_backfill_is_bounded(client, people, venue_with_logbook, monkeypatch):
    owner, venue, logbook = venue_with_logbook
    ids = [client.post("/api/scan", headers=people.make(f"访客{i}")["headers"],
                       json={"code": logbook["token"]}).json()["checkin_id"] for i in range(3)]
    monkeypatch.setattr(pages_console, "LIVE_BACKFILL", 2)
    sign_in(client, owner)
    config = live_config(client.get(f"/venues/{venue['id']}/live").text)
    assert config["start_after"] == ids[0]  # replays the newest two
    assert config["total"] == 3  # while the count covers the whole day


def test_live_page_shows_suspended_logbooks(client, engine, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    with Session(engine) as session:
        set_logbook_state(session, session.get(Logbook, logbook["id"]), "suspended", "登记员违规")
        session.commit()
    sign_in(client, owner)
    r = client.get(f"/venues/{venue['id']}/live")
    assert "登记簿「东门」已暂停使用" in r.text and "登记员违规" in r.text


def test_live_page_refused_to_non_registrars(client, people, venue_with_logbook):
    _owner, venue, _logbook = venue_with_logbook
    r = client.get(f"/venues/{venue['id']}/live", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    sign_in(client, people.make("王五"))
    r = client.get(f"/venues/{venue['id']}/live")
    assert r.status_code == 403
    assert "无权访问" in r.text and "仅限该场所的登记员查看" in r.text
    assert "live-config" not in r.text
    r = client.get(f"/venues/{venue['id']}/live?lang=en")
    assert r.status_code == 403 and "Only this venue&#39;s registrars may view this." in r.text
    assert client.get("/venues/99999/live").status_code == 404


def test_live_page_refused_to_officials(client, venue_with_logbook):
    _owner, venue, _logbook = venue_with_logbook
    sign_in(client, ADMIN["Authorization"].split()[1])
    assert client.get(f"/venues/{venue['id']}/live").status_code == 403


def test_live_page_for_a_co_registrar(client, people, venue_with_logbook):
    owner, venue, _logbook = venue_with_logbook
    helper = people.make("周七")
    add_co_registrar(client, owner, venue["id"], helper)
    sign_in(client, helper)
    assert client.get(f"/venues/{venue['id']}/live").status_code == 200


# --- language --------------------------------------------------------------------------------

def test_language_switch_is_remembered(client):
    r = client.get("/")
    assert '<html lang="zh-CN">' in r.text and "扫码登记" in r.text
    assert 'href="/?lang=en"' in r.text
    r = client.get("/?lang=en")
    assert '<html lang="en">' in r.text and "Sign in" in r.text
    assert "scanbook_lang=en" in r.headers["set-cookie"]
    r = client.get("/login")
    assert '<html lang="en">' in r.text and "Sign in to Scanbook" in r.text
    assert 'href="/login?lang=zh"' in r.text
    client.get("/?lang=zh")
    assert '<html lang="zh-CN">' in client.get("/").text


def test_every_string_has_both_languages():
    from web.i18n import STRINGS

    for key, (zh, en) in STRINGS.items():
        assert zh.strip() and en.strip(), key
