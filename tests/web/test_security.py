"""Security headers, session cookie flags, CSRF on cookie-authenticated requests, the
same-origin check on sign-in/out and on cookie-authenticated WebSockets, and the CSP that the
pages' inline scripts must fit."""

from __future__ import annotations

import dataclasses
import re

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from models.settings import load_settings
from web.app import create_app
from web.security import CSRF_COOKIE, SecurityMiddleware, page_script_hashes, script_hash

BASE_HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy",
                "content-security-policy")


def sign_in(client: TestClient, token: str) -> str:
    """Sign in through the form; the CSRF token the page can read."""
    r = client.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    return client.cookies[CSRF_COOKIE]


def set_cookies(response) -> dict[str, str]:
    return {v.split("=", 1)[0]: v for v in response.headers.get_list("set-cookie")}


# --- headers and cookie flags ----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/healthz", "/api/me", "/login", "/static/csrf.js",
                                  "/no-such-page"])
def test_security_headers_everywhere(client, path):
    r = client.get(path)
    for name in BASE_HEADERS:
        assert r.headers.get(name), (path, name)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "strict-transport-security" not in r.headers  # development: plain http is fine


def test_production_adds_hsts_and_secure_cookies(people):
    person = people.make()
    settings = dataclasses.replace(load_settings(), env="production")
    with TestClient(create_app(settings), base_url="https://testserver") as c:
        r = c.post("/login", data={"token": person["token"]}, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["strict-transport-security"].startswith("max-age=")
        cookies = set_cookies(r)
        assert "secure" in cookies["scanbook_session"].lower()
        assert "secure" in cookies[CSRF_COOKIE].lower()


def test_session_cookie_flags(client, people):
    person = people.make()
    r = client.post("/login", data={"token": person["token"]}, follow_redirects=False)
    cookies = set_cookies(r)
    session = cookies["scanbook_session"].lower()
    assert "httponly" in session and "samesite=lax" in session and "secure" not in session
    csrf = cookies[CSRF_COOKIE].lower()
    assert "httponly" not in csrf  # the page's script reads it
    assert "samesite=lax" in csrf and "path=/" in csrf


# --- CSRF ----------------------------------------------------------------------------------

def test_cookie_authenticated_post_needs_the_csrf_header(client, people):
    person = people.make()
    token = sign_in(client, person["token"])
    r = client.post("/api/scan", json={"code": "nope"})
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden" and "CSRF" in r.json()["message"]
    r = client.post("/api/scan", json={"code": "nope"}, headers={"X-CSRF-Token": token + "x"})
    assert r.status_code == 403
    r = client.post("/api/scan", json={"code": "nope"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 404 and r.json()["error"] == "unknown_code"
    # Reads need no token.
    assert client.get("/api/me").status_code == 200


def test_bearer_clients_are_exempt_but_other_schemes_are_not(client, people):
    person = people.make()
    sign_in(client, person["token"])
    r = client.post("/api/scan", json={"code": "nope"}, headers=person["headers"])
    assert r.status_code == 404
    r = client.post("/api/scan", json={"code": "nope"}, headers={"Authorization": "Basic eDp5"})
    assert r.status_code == 403  # auth falls back to the cookie for non-bearer schemes


def test_anonymous_posts_are_not_csrf_checked(client):
    r = client.post("/api/scan", json={"code": "x"})
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"


def test_the_token_is_per_session_and_changes_at_sign_in(client, people):
    a, b = people.make("甲乙"), people.make("丙丁")
    first = sign_in(client, a["token"])
    second = sign_in(client, b["token"])
    assert first != second
    r = client.post("/api/scan", json={"code": "nope"}, headers={"X-CSRF-Token": first})
    assert r.status_code == 403
    # A forged cookie does not help: the token is checked against the signed session.
    client.cookies.set(CSRF_COOKIE, "forged", domain="testserver.local")
    r = client.post("/api/scan", json={"code": "nope"}, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    # The next response puts the real token back in the readable cookie.
    client.get("/api/me")
    assert client.cookies[CSRF_COOKIE] == second


def test_sign_out_drops_the_csrf_cookie(client, people):
    sign_in(client, people.make()["token"])
    r = client.post("/logout", follow_redirects=False)
    assert r.status_code == 303
    assert "max-age=0" in set_cookies(r)[CSRF_COOKIE].lower()
    assert client.get("/api/me").status_code == 401


@pytest.mark.parametrize("headers, status", [
    ({}, 303),
    ({"Origin": "http://testserver"}, 303),
    ({"Referer": "http://testserver/login?next=/"}, 303),
    ({"Origin": "http://evil.example"}, 403),
    ({"Origin": "null"}, 403),
    ({"Referer": "http://evil.example/x"}, 403),
    ({"Origin": "http://testserver.evil.example"}, 403),
])
def test_sign_in_refuses_other_origins(client, people, headers, status):
    person = people.make()
    r = client.post("/login", data={"token": person["token"]}, headers=headers,
                    follow_redirects=False)
    assert r.status_code == status
    if status == 403:
        assert r.json()["error"] == "forbidden"
        assert "scanbook_session" not in set_cookies(r)


def test_sign_out_refuses_other_origins(client, people):
    sign_in(client, people.make()["token"])
    r = client.post("/logout", headers={"Origin": "http://evil.example"}, follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/api/me").status_code == 200


# --- the form field, on a small app of its own ---------------------------------------------

@pytest.fixture
def form_client():
    async def sign_in_here(request: Request):
        request.session["sid"] = "a-session-id"  # what web/pages.start_session stores
        return JSONResponse({})

    async def echo(request: Request):
        form = await request.form()
        return JSONResponse({k: v if isinstance(v, str) else v.filename
                             for k, v in form.items()})

    app = Starlette(routes=[Route("/in", sign_in_here), Route("/echo", echo, methods=["POST"])],
                    middleware=[Middleware(SessionMiddleware, secret_key="k" * 20),
                                Middleware(SecurityMiddleware, production=False,
                                           public_url="http://testserver", script_hashes=[])])
    with TestClient(app) as c:
        c.get("/in")
        yield c


def test_form_field_token_and_the_body_still_reaches_the_endpoint(form_client):
    token = form_client.cookies[CSRF_COOKIE]
    r = form_client.post("/echo", data={"csrf_token": token, "text": "你好"})
    assert r.status_code == 200 and r.json() == {"csrf_token": token, "text": "你好"}
    r = form_client.post("/echo", data={"csrf_token": token, "text": "x"},
                         files={"f": ("a.txt", b"abc", "text/plain")})
    assert r.status_code == 200 and r.json()["f"] == "a.txt"
    assert form_client.post("/echo", data={"csrf_token": "bad", "text": "x"}).status_code == 403
    assert form_client.post("/echo", data={"text": "x"}).status_code == 403
    big = {"csrf_token": token, "text": "x" * 100_000}
    assert form_client.post("/echo", data=big).status_code == 403  # not buffered past 64 KB
    r = form_client.post("/echo", content=b"--x\r\ngarbage",
                         headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 403


# --- WebSockets ----------------------------------------------------------------------------

def test_cookie_websocket_from_another_origin_is_refused(client, venue_with_logbook):
    owner, venue, _ = venue_with_logbook
    path = f"/ws/venues/{venue['id']}/feed"
    sign_in(client, owner["token"])
    with client.websocket_connect(path, headers={"Origin": "http://testserver"}) as ws:
        assert ws.receive_json()["type"] == "ready"
    with client.websocket_connect(path, headers={"Origin": "http://evil.example"}) as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4403
    client.cookies.clear()
    with client.websocket_connect(path, headers={"Origin": "http://evil.example",
                                                 **owner["headers"]}) as ws:
        assert ws.receive_json()["type"] == "ready"  # a bearer client is not a browser


# --- the CSP fits the pages ----------------------------------------------------------------

_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)
_DATA_TYPES = {"application/json", "application/ld+json"}


def _inline_scripts(html: str) -> list[str]:
    out = []
    for attrs, body in _SCRIPT.findall(html):
        if re.search(r"\bsrc\s*=", attrs):
            continue
        kind = re.search(r"\btype\s*=\s*[\"']?([^\"'\s>]+)", attrs)
        if kind and kind.group(1).lower() in _DATA_TYPES:
            continue  # data blocks are never executed
        out.append(body)
    return out


def test_every_page_fits_the_content_security_policy(client, venue_with_logbook):
    owner, venue, book = venue_with_logbook
    anonymous = ["/", "/login", f"/s/{book['token']}", "/s/unknown-code"]
    signed_in = ["/", f"/s/{book['token']}", f"/venues/{venue['id']}/live",
                 f"/logbooks/{book['id']}/poster", "/venues/999999/live"]
    pages = [(path, client.get(path)) for path in anonymous]
    sign_in(client, owner["token"])
    pages += [(path, client.get(path)) for path in signed_in]
    allowed = set(page_script_hashes())
    for path, r in pages:
        assert r.headers["content-type"].startswith("text/html"), path
        csp = r.headers["content-security-policy"]
        script_src = next(d for d in csp.split("; ") if d.startswith("script-src"))
        for body in _inline_scripts(r.text):
            assert script_hash(body) in allowed and script_hash(body) in script_src, (
                f"{path}: an inline script the CSP does not allow; list it in "
                f"web.security.page_script_hashes: {body[:80]!r}")
        # style-src 'self': no inline styles, no inline event handlers (script-src)
        assert not re.search(r"<style\b|\sstyle\s*=", r.text, re.I), path
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", r.text, re.I), path


# --- request bodies ---------------------------------------------------------------------------

def test_oversized_bodies_are_refused_before_buffering(client, people, monkeypatch):
    monkeypatch.setattr("web.security.MAX_BODY", 1000)
    person = people.make()
    big = b'{"code": "' + b"x" * 2000 + b'"}'
    r = client.post("/api/scan", headers={**person["headers"],
                                          "Content-Type": "application/json"}, content=big)
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"

    def chunks():  # no Content-Length: chunked transfer encoding
        for i in range(0, len(big), 100):
            yield big[i:i + 100]

    r = client.post("/api/scan", headers=person["headers"], content=chunks())
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    r = client.post("/api/scan", headers=person["headers"], content=iter([b'{"code": "x"}']))
    assert r.status_code == 404 and r.json()["error"] == "unknown_code"


def test_tokens_are_stored_only_as_hashes(client, people, engine):
    from sqlalchemy import text

    person = people.make()
    with engine.connect() as conn:
        tables = [row[0] for row in conn.execute(text(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            if engine.dialect.name == "sqlite" else
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))]
        for table in tables:
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                assert not any(person["token"] in str(value) for value in row), table


def test_values_the_database_cannot_take_are_validation_errors(client, people,
                                                               venue_with_logbook):
    owner, venue, book = venue_with_logbook
    person = people.make()
    # A NUL in a scan code never reaches the group commit (on PostgreSQL it would fail the
    # whole batch, everyone's scans with it).
    r = client.post("/api/scan", headers=person["headers"], json={"code": "ab\x00cd"})
    assert r.status_code == 404 and r.json()["error"] == "unknown_code"
    r = client.post("/api/scan", headers=person["headers"], json={"code": book["token"]})
    assert r.status_code == 201
    # Text with a NUL, numbers past the database's integers: 422, never 500 or 503.
    r = client.post("/api/messages", headers=person["headers"], json={"text": "a\x00b"})
    assert r.status_code in (201, 422)
    for path in ("/api/logbooks/2147483648", "/api/venues/99999999999999999999/logbooks"):
        r = client.get(path, headers=owner["headers"])
        assert r.status_code == 404 and r.json()["error"] == "not_found", path
    r = client.get("/api/logbooks/2147483647", headers=owner["headers"])
    assert r.status_code == 404  # the largest id still reaches the endpoint
    r = client.post(f"/api/venues/{venue['id']}/registrars", headers=owner["headers"],
                    json={"citizen_id": 10**30})
    assert r.status_code == 422 and r.json()["error"] == "validation_error"


def test_every_api_answer_is_no_store(client, people, venue_with_logbook):
    """API answers carry someone's data (a token, a card, an export, the unmasked trace):
    Cache-Control: no-store on every one, errors included; pages have it already."""
    from datetime import date

    from models.idnumber import make_id_number
    from tests.conftest import ADMIN

    owner, _venue, logbook = venue_with_logbook
    visitor = people.make("欧阳娜娜")
    client.post("/api/scan", headers=visitor["headers"], json={"code": logbook["token"]})
    answers = {
        "citizen created (token)": client.post("/api/admin/citizens", headers=ADMIN, json={
            "name": "王五", "id_number": make_id_number("110101", date(1990, 1, 1), 77)}),
        "trace (unmasked)": client.get(
            f"/api/admin/trace?id_number={visitor['id_number']}&purpose=流调", headers=ADMIN),
        "my card": client.get("/api/me", headers=visitor["headers"]),
        "export": client.get(f"/api/logbooks/{logbook['id']}/export.csv",
                             headers=owner["headers"]),
        "listing": client.get(f"/api/logbooks/{logbook['id']}/checkins",
                              headers=owner["headers"]),
        "audit": client.get("/api/admin/audit", headers=ADMIN),
        "an error": client.get("/api/me"),
    }
    for what, r in answers.items():
        assert r.headers.get("cache-control") == "no-store", (what, r.status_code, r.headers)
    assert answers["citizen created (token)"].status_code == 201
    assert answers["an error"].status_code == 401
