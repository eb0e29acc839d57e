"""The registrar's console pages, the entrance display and its rotating codes, scans queued
offline (scanned_at), and the card's photo — through the real app."""

from __future__ import annotations

import io
import os
import re
import time
from datetime import datetime, timedelta

import pytest
from PIL import Image

from models import rotating
from models.timeutil import BEIJING, parse_iso
from tests.conftest import ADMIN, add_co_registrar
from tests.web.test_pages import sign_in

SECRET = os.environ["SCANBOOK_SECRET"]


def image_bytes(fmt: str = "PNG", size=(40, 60), exif_orientation: int | None = None) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, (30, 120, 200))
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(out, format=fmt, exif=exif)
    else:
        image.save(out, format=fmt)
    return out.getvalue()


# --- the console -----------------------------------------------------------------------------

def test_console_lists_my_venues_and_offers_the_form(client, people, venue_with_logbook):
    owner, venue, _logbook = venue_with_logbook
    r = client.get("/console", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fconsole"
    sign_in(client, owner)
    r = client.get("/console")
    assert r.status_code == 200
    assert f'data-venue-id="{venue["id"]}"' in r.text and venue["name"] in r.text
    assert 'id="venue-form"' in r.text and "朝阳区" in r.text and "/static/console.js" in r.text
    assert "1个登记簿" in r.text and 'id="standing"' not in r.text


def test_console_warns_a_registrar_who_is_not_green(client, people, run_jobs):
    person = people.make("王五")
    client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": person["id_number"], "status": "yellow", "reason": "密接"}]})
    run_jobs()
    sign_in(client, person)
    r = client.get("/console")
    # Why, and what to do next, instead of a form that would be refused.
    assert 'id="standing" data-kind="revoked"' in r.text and 'id="console-empty"' in r.text
    assert "居家观察" in r.text and "下一步" in r.text and 'id="venue-form"' not in r.text


def test_a_suspended_registrar_sees_why_and_no_logbook_form(client, people, run_jobs,
                                                           venue_with_logbook):
    owner, venue, _logbook = venue_with_logbook
    sign_in(client, owner)
    assert 'id="logbook-form"' in client.get(f"/venues/{venue['id']}").text
    r = client.post("/api/admin/violations", headers=ADMIN,
                    json={"citizen_id": owner["id"], "reason": "未核验健康码"})
    assert r.status_code == 202, r.text
    run_jobs()
    page = client.get(f"/venues/{venue['id']}").text
    assert 'id="standing" data-kind="suspended"' in page
    assert "未核验健康码" in page and "申请解除" in page
    assert 'id="logbook-form"' not in page
    # The request the form would have made is indeed refused.
    r = client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                    json={"label": "西门"})
    assert r.status_code == 403
    # Delete sits apart from the exports, in its own row.
    assert page.index("export.xlsx") < page.index('class="danger-zone"')


def test_console_sends_officials_home(client):
    sign_in(client, ADMIN["Authorization"].split()[1])
    r = client.get("/console", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_venue_page_for_its_owner(client, people, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    helper = people.make("周七")
    add_co_registrar(client, owner, venue["id"], helper)
    client.post("/api/scan", headers=people.make()["headers"], json={"code": logbook["token"]})
    sign_in(client, owner)
    r = client.get(f"/venues/{venue['id']}")
    assert r.status_code == 200
    book = f'data-logbook-id="{logbook["id"]}"'
    assert book in r.text
    for link in (f"/logbooks/{logbook['id']}/poster", f"/logbooks/{logbook['id']}/display",
                 f"/api/logbooks/{logbook['id']}/export.csv?lang=zh",  # the page's language
                 f"/api/logbooks/{logbook['id']}/export.xlsx?lang=zh",
                 f"/venues/{venue['id']}/live"):
        assert f'href="{link}"' in r.text, link
    assert 'id="confirm-delete"' in r.text and 'id="proxy-checkin-form"' in r.text
    assert 'id="registrar-form"' in r.text  # the owner adds co-registrars
    assert "周*" in r.text and f"#{helper['id']}" in r.text
    assert "今日到访 1 人" in r.text


def test_venue_page_for_a_co_registrar_has_no_registrar_form(client, people,
                                                            venue_with_logbook):
    owner, venue, _logbook = venue_with_logbook
    helper = people.make("周七")
    add_co_registrar(client, owner, venue["id"], helper)
    client.post(f"/api/venues/{venue['id']}/registrars", headers=owner["headers"],
                json={"citizen_id": 4242})
    sign_in(client, helper)
    r = client.get(f"/venues/{venue['id']}")
    assert r.status_code == 200 and 'id="registrar-form"' not in r.text
    # They may leave; they see nobody's pending invitations and remove nobody.
    assert r.text.count('data-action="leave"') == 1 and 'data-action="remove"' not in r.text
    assert 'id="invitations"' not in r.text and "#4242" not in r.text


def test_venue_page_lists_registrars_and_pending_invitations_for_the_owner(
        client, people, venue_with_logbook):
    owner, venue, _logbook = venue_with_logbook
    helper, invited = people.make("周七"), people.make("吴八")
    add_co_registrar(client, owner, venue["id"], helper)
    for who in (invited["id"], 4242):
        client.post(f"/api/venues/{venue['id']}/registrars", headers=owner["headers"],
                    json={"citizen_id": who})
    sign_in(client, owner)
    page = client.get(f"/venues/{venue['id']}").text
    registrars = page[page.index('id="registrars"'):page.index('id="invitations"')]
    assert "周*" in registrars and registrars.count('data-action="remove"') == 1
    pending = page[page.index('id="invitations"'):page.index('id="registrar-form"')]
    assert f'data-citizen-id="{invited["id"]}"' in pending and "#4242" in pending
    assert "吴*" not in pending  # no names before they accept
    assert pending.count('data-action="withdraw"') == 2
    assert 'id="no-invitations" hidden' in page and 'data-action="leave"' not in page


def test_home_shows_invitations_to_answer(client, people, venue_with_logbook):
    owner, venue, _logbook = venue_with_logbook
    invited = people.make("吴八")
    r = client.post(f"/api/venues/{venue['id']}/registrars", headers=owner["headers"],
                    json={"citizen_id": invited["id"]})
    sign_in(client, invited)
    home = client.get("/").text
    assert f'data-invitation-id="{r.json()["id"]}"' in home
    assert "李* 邀请您担任「望京SOHO塔1」的登记员" in home
    assert 'data-answer="accept"' in home and 'data-answer="decline"' in home
    client.post(f"/api/invitations/{r.json()['id']}/decline", headers=invited["headers"])
    home = client.get("/").text
    assert 'id="invitations" class="card-box" aria-labelledby="invitations-h" hidden' in home


def test_venue_page_hides_deleted_logbooks(client, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    client.delete(f"/api/logbooks/{logbook['id']}", headers=owner["headers"])
    sign_in(client, owner)
    r = client.get(f"/venues/{venue['id']}")
    assert f'data-logbook-id="{logbook["id"]}"' not in r.text
    assert 'id="no-logbooks"' in r.text and 'id="no-logbooks" hidden' not in r.text


def test_venue_page_refused_to_others(client, people, venue_with_logbook):
    _owner, venue, _logbook = venue_with_logbook
    sign_in(client, people.make("王五"))
    r = client.get(f"/venues/{venue['id']}")
    assert r.status_code == 403 and "仅限该场所的登记员查看" in r.text
    assert client.get("/venues/99999").status_code == 404


# --- the entrance display and its rotating codes ------------------------------------------

def test_display_page_shows_the_current_rotating_code(client, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    sign_in(client, owner)
    r = client.get(f"/logbooks/{logbook['id']}/display")
    assert r.status_code == 200
    assert venue["name"] in r.text and "二维码每30秒更新一次" in r.text
    assert "请保持一米线距离" in r.text and "/static/display.js" in r.text
    code = re.search(r'"code": ?"([^"]+)"', r.text).group(1)
    assert code.startswith(rotating.PREFIX) and logbook["token"] not in r.text
    assert rotating.resolve(code, SECRET, now=time.time()) == logbook["token"]
    assert f"/s/{code}" in r.text  # the QR code's link


def test_rotating_code_endpoint(client, people, venue_with_logbook):
    owner, _venue, logbook = venue_with_logbook
    r = client.get(f"/api/logbooks/{logbook['id']}/rotating-code", headers=owner["headers"])
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["scan_url"] == f"http://testserver/s/{body['code']}"
    assert body["period"] == 30 and body["grace"] == rotating.GRACE_SECONDS
    assert 0 < body["expires_in"] <= 30
    assert body["qr_svg"].startswith("<svg")
    assert parse_iso(body["expires_at"], "x").timestamp() == pytest.approx(
        time.time() + body["expires_in"], abs=2)
    other = people.make("王五")
    assert client.get(f"/api/logbooks/{logbook['id']}/rotating-code",
                      headers=other["headers"]).status_code == 403
    client.delete(f"/api/logbooks/{logbook['id']}", headers=owner["headers"])
    r = client.get(f"/api/logbooks/{logbook['id']}/rotating-code", headers=owner["headers"])
    assert r.status_code == 410 and r.json()["error"] == "logbook_deleted"


def test_a_scan_with_the_current_rotating_code_checks_in(client, people, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    code = client.get(f"/api/logbooks/{logbook['id']}/rotating-code",
                      headers=owner["headers"]).json()["code"]
    visitor = people.make("欧阳娜娜")
    r = client.post("/api/scan", headers=visitor["headers"], json={"code": code})
    assert r.status_code == 201, r.text
    assert r.json()["logbook"]["id"] == logbook["id"]
    # the previous window's code, still inside the grace
    now = time.time()
    window = rotating.window_of(now)
    previous = rotating.make_code(logbook["token"], window - 1, SECRET)
    if now - window * rotating.WINDOW_SECONDS <= rotating.GRACE_SECONDS:
        assert client.post("/api/scan", headers=people.make()["headers"],
                           json={"code": previous}).status_code == 201


def test_an_expired_rotating_code_is_refused(client, people, venue_with_logbook):
    _owner, _venue, logbook = venue_with_logbook
    old = rotating.make_code(logbook["token"], rotating.window_of(time.time()) - 3, SECRET)
    visitor = people.make("欧阳娜娜")
    r = client.post("/api/scan", headers=visitor["headers"], json={"code": old})
    body = r.json()
    assert r.status_code == 410 and body["error"] == "code_expired" and body["message"]
    assert set(body) == {"error", "message"}
    forged = old[:-2] + ("AA" if old[-2:] != "AA" else "BB")
    # a photo's token altered, or cut at its first dot, names no logbook
    for bad in (forged, old.split(".", 1)[0], old.split(".", 1)[1]):
        r = client.post("/api/scan", headers=visitor["headers"], json={"code": bad})
        assert r.status_code == 404 and r.json()["error"] == "unknown_code", bad
    # the page behind the expired code says so, and offers no button
    sign_in(client, visitor)
    page = client.get(f"/s/{old}")
    assert page.status_code == 410 and 'id="scan-expired"' in page.text
    assert "该二维码已过期" in page.text and 'id="check-in"' not in page.text
    assert client.get(f"/s/{forged}").status_code == 404


def test_the_scan_page_takes_a_current_rotating_code(client, people, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    code = client.get(f"/api/logbooks/{logbook['id']}/rotating-code",
                      headers=owner["headers"]).json()["code"]
    sign_in(client, people.make())
    r = client.get(f"/s/{code}")
    assert r.status_code == 200 and venue["name"] in r.text
    assert f'data-code="{code}"' in r.text  # the button posts the rotating code itself


def test_display_refused_to_others(client, people, venue_with_logbook):
    _owner, _venue, logbook = venue_with_logbook
    r = client.get(f"/logbooks/{logbook['id']}/display", follow_redirects=False)
    assert r.status_code == 303
    sign_in(client, people.make("王五"))
    r = client.get(f"/logbooks/{logbook['id']}/display")
    assert r.status_code == 403 and logbook["token"] not in r.text


# --- scans queued offline ----------------------------------------------------------------------

def test_a_queued_scan_is_recorded_at_its_scan_time(client, people, venue_with_logbook):
    owner, _venue, logbook = venue_with_logbook
    visitor = people.make("欧阳娜娜")
    scanned = datetime.now(BEIJING) - timedelta(minutes=20)
    r = client.post("/api/scan", headers=visitor["headers"],
                    json={"code": logbook["token"], "scanned_at": scanned.isoformat()})
    assert r.status_code == 201, r.text
    assert abs(parse_iso(r.json()["at"], "at") - scanned) < timedelta(seconds=1)
    listed = client.get(f"/api/logbooks/{logbook['id']}/checkins",
                        headers=owner["headers"]).json()["items"]
    assert abs(parse_iso(listed[0]["at"], "at") - scanned) < timedelta(seconds=1)


def test_a_queued_rotating_code_is_checked_at_its_scan_time(client, people,
                                                           venue_with_logbook):
    _owner, _venue, logbook = venue_with_logbook
    scanned = time.time() - 5 * 60
    code = rotating.current(logbook["token"], SECRET, scanned).code
    visitor = people.make("欧阳娜娜")
    r = client.post("/api/scan", headers=visitor["headers"], json={"code": code})
    assert r.status_code == 410  # sent now, without its time: expired
    at = datetime.fromtimestamp(scanned, BEIJING).isoformat()
    r = client.post("/api/scan", headers=visitor["headers"], json={"code": code,
                                                                   "scanned_at": at})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(("shift", "ok"), [(timedelta(hours=-3), False),
                                           (timedelta(minutes=10), False),
                                           (timedelta(seconds=20), True)])
def test_scanned_at_is_bounded(client, people, venue_with_logbook, shift, ok):
    _owner, _venue, logbook = venue_with_logbook
    at = (datetime.now(BEIJING) + shift).isoformat()
    r = client.post("/api/scan", headers=people.make()["headers"],
                    json={"code": logbook["token"], "scanned_at": at})
    assert (r.status_code == 201) is ok, r.text
    if not ok:
        assert r.json()["error"] == "validation_error"


def test_scanned_at_must_carry_an_offset(client, people, venue_with_logbook):
    _owner, _venue, logbook = venue_with_logbook
    r = client.post("/api/scan", headers=people.make()["headers"],
                    json={"code": logbook["token"], "scanned_at": "2024-05-01T10:00:00"})
    assert r.status_code == 422


# --- the card's photo --------------------------------------------------------------------------

def test_photo_upload_replaces_and_serves_a_clean_jpeg(client, people, app):
    me = people.make("张三丰")
    assert client.get("/api/me/photo", headers=me["headers"]).status_code == 404
    assert client.get("/api/me", headers=me["headers"]).json()["photo_url"] is None
    r = client.post("/api/me/photo", headers=me["headers"],
                    files={"photo": ("me.jpg", image_bytes("JPEG", (400, 300), 6), "image/jpeg")})
    assert r.status_code == 201, r.text
    first = r.json()["photo_url"]
    assert client.get("/api/me", headers=me["headers"]).json()["photo_url"] == first
    got = client.get(first, headers=me["headers"])
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.headers["cache-control"] == "no-store"  # a face: no cache keeps it
    image = Image.open(io.BytesIO(got.content))
    assert image.format == "JPEG" and image.size == (300, 400)  # turned upright (EXIF 6)
    assert not image.getexif()  # EXIF (location, device) dropped

    r = client.post("/api/me/photo", headers=me["headers"],
                    files={"photo": ("me.webp", image_bytes("WEBP"), "image/webp")})
    second = r.json()["photo_url"]
    assert r.status_code == 201 and second != first
    folder = app.state.settings.data_dir / "photos"
    assert (folder / f"{second.split('=')[1]}.jpg").is_file()
    assert not (folder / f"{first.split('=')[1]}.jpg").exists()  # the old one is removed


def test_photo_upload_refuses_what_is_not_a_photo(client, people):
    me = people.make()
    for name, data, kind in [("x.gif", image_bytes("GIF"), "image/gif"),
                             ("x.jpg", b"not an image at all", "image/jpeg"),
                             ("x.jpg", b"", "image/jpeg")]:
        r = client.post("/api/me/photo", headers=me["headers"], files={"photo": (name, data, kind)})
        assert r.status_code == 422, (name, r.text)
    r = client.post("/api/me/photo", headers=me["headers"], json={"photo": "x"})
    assert r.status_code == 422
    r = client.post("/api/me/photo", headers=me["headers"], data={"photo": "text, not a file"})
    assert r.status_code == 422


def test_photo_upload_size_is_capped(client, people):
    me = people.make()
    big = b"\xff\xd8" + os.urandom(9 * 1024 * 1024)
    r = client.post("/api/me/photo", headers=me["headers"],
                    files={"photo": ("big.jpg", big, "image/jpeg")})
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"


def test_photo_is_only_ever_my_own(client, people):
    me, other = people.make("张三丰"), people.make("李四")
    client.post("/api/me/photo", headers=me["headers"],
                files={"photo": ("me.png", image_bytes(), "image/png")})
    assert client.get("/api/me/photo", headers=other["headers"]).status_code == 404
    assert client.get("/api/me/photo").status_code == 401
