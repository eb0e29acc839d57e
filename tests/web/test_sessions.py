"""Sessions live on the server: sign-out ends one (the old cookie answers 401), sign-out
everywhere revokes a citizen's bearer token and every session, disabling an official or
rotating their token ends theirs — on every web process (two real uvicorn processes) — and
open WebSockets of an ended session close with 4401 within a second."""

from __future__ import annotations

import threading
import time

import httpx2 as httpx
import pytest
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import ADMIN
from tests.servers import running_server
from web.common import SESSION_COOKIE


def _sign_in(client, token: str) -> str:
    r = client.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303
    return client.cookies[SESSION_COOKIE]


def test_sign_out_ends_the_session_on_the_server(client, people):
    person = people.make()
    cookie = _sign_in(client, person["token"])
    assert client.get("/api/me").status_code == 200
    assert client.post("/logout", follow_redirects=False).status_code == 303
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie)  # the old cookie, replayed
    r = client.get("/api/me")
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"


def test_a_cookie_from_before_server_sessions_names_no_one(client, app):
    """The old cookie held {"official": true}: it must not open anything any more."""
    from base64 import b64encode

    import itsdangerous
    import orjson

    signer = itsdangerous.TimestampSigner(str(app.state.settings.secret))
    old = signer.sign(b64encode(orjson.dumps({"official": True}))).decode()
    client.cookies.set(SESSION_COOKIE, old)
    assert client.get("/api/admin/audit").status_code == 401


def test_sign_out_everywhere_revokes_the_token_and_every_session(client, people, app):
    person = people.make()
    other = people.make("李四")
    cookie = _sign_in(client, person["token"])
    client.cookies.clear()
    r = client.post("/api/me/sign-out-everywhere", headers=person["headers"])
    assert r.status_code == 200, r.text
    assert r.json() == {"signed_out": True, "sessions_ended": 1, "token_revoked": True}
    assert client.get("/api/me", headers=person["headers"]).status_code == 401
    client.cookies.set(SESSION_COOKIE, cookie)
    assert client.get("/api/me").status_code == 401
    client.cookies.clear()
    assert client.get("/api/me", headers=other["headers"]).status_code == 200  # only theirs


def test_a_citizen_websocket_closes_4401_when_their_sessions_end(client, people):
    person = people.make()
    _sign_in(client, person["token"])
    with client.websocket_connect("/ws/me", headers={"Origin": "http://testserver"}) as ws:
        assert ws.receive_json()["type"] == "ready"
        started = time.monotonic()
        r = _sign_out_everywhere_by_token(client, person["headers"])
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_json()
        assert closed.value.code == 4401
        assert time.monotonic() - started < 1.0
    assert r["status"] == 200


def _sign_out_everywhere_by_token(client, headers) -> dict:
    """POST sign-out-everywhere with the bearer token alone (the cookie set aside), while the
    session's WebSocket is open."""
    out: dict = {}
    cookies = dict(client.cookies)
    client.cookies.clear()
    try:
        out["status"] = client.post("/api/me/sign-out-everywhere", headers=headers).status_code
    finally:
        for name, value in cookies.items():
            client.cookies.set(name, value)
    return out


def test_an_official_wallboard_closes_4401_when_they_sign_out_elsewhere(client, officials):
    made = officials.make("viewer")
    with client.websocket_connect("/ws/wallboard",
                                  headers={"Authorization": made["headers"]["Authorization"]}
                                  ) as ws:
        assert ws.receive_json()["type"] == "crowding"
        started = time.monotonic()
        assert client.delete(f"/api/admin/officials/{made['id']}",
                             headers=ADMIN).status_code == 204
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_json()
        assert closed.value.code == 4401 and time.monotonic() - started < 1.0


def _login(server, token: str) -> httpx.Client:
    browser = httpx.Client(base_url=server.url, timeout=5)
    r = browser.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303
    return browser


def test_revocation_reaches_every_web_process(client, people, officials):
    """Two uvicorn processes on one database and one Redis: what ends on A has ended on B."""
    person = people.make()
    tracer = officials.make("tracer")
    with running_server() as a, running_server() as b:
        # A session made on A is good on B; signing out on A ends it on B.
        browser = _login(a, person["token"])
        cookie = browser.cookies[SESSION_COOKIE]
        assert httpx.get(f"{b.url}/api/me", cookies={SESSION_COOKIE: cookie}).status_code == 200
        assert browser.post("/logout", follow_redirects=False).status_code == 303
        assert httpx.get(f"{b.url}/api/me", cookies={SESSION_COOKIE: cookie}).status_code == 401

        # An official disabled through A: token and session stop on B, and B's open
        # WebSocket of theirs closes with 4401 within a second.
        official = _login(a, tracer["token"])
        cookie = official.cookies[SESSION_COOKIE]
        closed: dict = {}
        ready = threading.Event()

        def watch() -> None:
            with connect(f"{b.ws_url}/ws/wallboard", open_timeout=5,
                         additional_headers=tracer["headers"]) as ws:
                ws.recv(timeout=5)
                ready.set()
                try:
                    while True:
                        ws.recv(timeout=5)
                except ConnectionClosed as exc:
                    closed["code"] = exc.rcvd.code if exc.rcvd else None
                    closed["at"] = time.monotonic()

        watcher = threading.Thread(target=watch)
        watcher.start()
        assert ready.wait(10)
        started = time.monotonic()
        r = httpx.delete(f"{a.url}/api/admin/officials/{tracer['id']}", headers=ADMIN)
        assert r.status_code == 204
        assert httpx.get(f"{b.url}/api/admin/me", headers=tracer["headers"]).status_code == 401
        assert httpx.get(f"{b.url}/api/admin/me",
                         cookies={SESSION_COOKIE: cookie}).status_code == 401
        watcher.join(10)
        assert closed.get("code") == 4401 and closed["at"] - started < 1.0

        # A citizen's sign-out everywhere on A: B forgets the bearer token it had cached.
        assert httpx.get(f"{b.url}/api/me", headers=person["headers"]).status_code == 200
        r = httpx.post(f"{a.url}/api/me/sign-out-everywhere", headers=person["headers"])
        assert r.status_code == 200
        assert _status_within(f"{b.url}/api/me", person["headers"], 401, seconds=1.0)


def _status_within(url: str, headers: dict, status: int, *, seconds: float) -> bool:
    """B hears of a revoked citizen token through Redis pub/sub (its cache is forgotten when
    the message arrives): allow that one hop."""
    deadline = time.monotonic() + seconds
    while True:
        if httpx.get(url, headers=headers).status_code == status:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
