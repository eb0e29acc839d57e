"""The bearer-scan lane (web/lanes.py) answers exactly as the full middleware stack does.

A chunked body (no Content-Length) never takes the lane, so each case is sent both ways and
the answers compared: status, body, and every header but the ones that vary per answer.
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from models.settings import load_settings
from tests.conftest import ADMIN, People, client_with
from web.app import create_app
from web.lanes import _scan_lane

VARYING = {"date", "content-length", "transfer-encoding"}


def both_ways(client: TestClient, headers: dict, body: bytes):
    """(the lane's answer, the full stack's answer) to the same scan."""
    headers = {**headers, "Content-Type": "application/json"}
    lane = client.post("/api/scan", headers=headers, content=body)
    full = client.post("/api/scan", headers=headers, content=iter([body]))
    return lane, full


def same_answer(lane, full) -> None:
    assert lane.status_code == full.status_code, (lane.text, full.text)
    assert lane.json() == full.json()
    strip = {k: v for k, v in lane.headers.items() if k not in VARYING}
    assert strip == {k: v for k, v in full.headers.items() if k not in VARYING}


def test_lane_and_full_stack_agree_on_every_error(client, people, venue_with_logbook):
    visitor = people.make("王五")
    cases = [
        (visitor["headers"], b'{"code": "nope"}', 404, "unknown_code"),
        (visitor["headers"], b"{not json", 422, "validation_error"),
        (visitor["headers"], b"[1, 2]", 422, "validation_error"),
        (visitor["headers"], b'{"code": ""}', 422, "validation_error"),
        (visitor["headers"], b'{"code": "ab\\u0000cd"}', 404, "unknown_code"),
        (visitor["headers"], b'{"code": "x", "scanned_at": "yesterday"}', 422,
         "validation_error"),
        (ADMIN, b'{"code": "x"}', 403, "forbidden"),
        ({"Authorization": "Bearer no-such-token"}, b'{"code": "x"}', 401, "unauthenticated"),
    ]
    for headers, body, status, code in cases:
        lane, full = both_ways(client, headers, body)
        same_answer(lane, full)
        assert lane.status_code == status and lane.json()["error"] == code, (body, lane.text)
        assert lane.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'self'" in lane.headers["content-security-policy"]


def test_lane_checks_in_and_repeats_like_the_route(client, people, venue_with_logbook):
    owner, venue, book = venue_with_logbook
    visitor = people.make("欧阳娜娜")
    body = b'{"code": "%s"}' % book["token"].encode()
    lane, full = both_ways(client, visitor["headers"], body)
    assert lane.status_code == 201 and full.status_code == 200  # the second is the repeat
    assert lane.json() == full.json()
    assert lane.json()["name_masked"] == "欧阳**"
    assert lane.headers["content-type"] == "application/json"
    assert {k: v for k, v in lane.headers.items() if k not in VARYING} == {
        k: v for k, v in full.headers.items() if k not in VARYING}
    r = client.get(f"/api/logbooks/{book['id']}/checkins", headers=owner["headers"])
    assert [c["id"] for c in r.json()["items"]] == [lane.json()["checkin_id"]]


def test_lane_answers_a_deleted_logbook_like_the_route(client, people, venue_with_logbook):
    owner, _venue, book = venue_with_logbook
    assert client.delete(f"/api/logbooks/{book['id']}", headers=owner["headers"]).status_code \
        == 204
    lane, full = both_ways(client, people.make()["headers"],
                           b'{"code": "%s"}' % book["token"].encode())
    same_answer(lane, full)
    assert lane.status_code == 410 and lane.json()["error"] == "logbook_deleted"


@pytest.fixture
def tight_client():
    with client_with(scan_rate_per_min=2) as c:
        yield c


def test_lane_rate_limits_with_retry_after(tight_client):
    visitor = People(tight_client).make()
    answers = [tight_client.post("/api/scan", headers=visitor["headers"], json={"code": "x"})
               for _ in range(3)]
    assert [r.status_code for r in answers] == [404, 404, 429]
    assert answers[2].json()["error"] == "rate_limited"
    assert int(answers[2].headers["retry-after"]) >= 1
    # and the full stack counts in the same bucket
    r = tight_client.post("/api/scan", headers=visitor["headers"], content=iter([b'{"code":1}']))
    assert r.status_code == 429 and r.headers["retry-after"]


def test_which_requests_take_the_lane():
    bearer = (b"authorization", b"Bearer abc")
    length = (b"content-length", b"16")
    host = (b"host", b"scanbook.example")
    assert _scan_lane([bearer, length, host]) == ("abc", b"scanbook.example")
    assert _scan_lane([bearer, length, (b"cookie", b"scanbook_session=x")]) is None  # browser
    assert _scan_lane([bearer, (b"transfer-encoding", b"chunked")]) is None  # no length
    assert _scan_lane([bearer]) is None
    assert _scan_lane([bearer, (b"content-length", b"99999")]) is None  # the full stack's 413
    assert _scan_lane([(b"authorization", b"Basic eDp5"), length]) is None
    assert _scan_lane([(b"authorization", b"Bearer  "), length]) is None
    assert _scan_lane([length]) is None


# What the WebSocket lane takes from Starlette without going through it: pyproject pins
# Starlette to the range these two tests pass on.

def test_the_lane_reads_a_session_cookie_exactly_as_session_middleware_wrote_it():
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.sessions import SessionMiddleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from web.common import SESSION_COOKIE, SESSION_MAX_AGE

    settings = load_settings()
    session = {"citizen_id": 5, "csrf": "tök", "official": True, "n": [1, 2]}

    async def set_session(request):
        request.session.update(session)
        return PlainTextResponse("ok")

    writer = Starlette(routes=[Route("/", set_session)], middleware=[Middleware(
        SessionMiddleware, secret_key=settings.secret, session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE)])
    with TestClient(writer) as http:
        cookie = http.get("/").cookies[SESSION_COOKIE]
    lanes = create_app(settings)

    def read(value: str) -> dict:
        return lanes._session({"headers": [(b"cookie", f"a=b; {value}".encode())]})

    assert read(f"{SESSION_COOKIE}={cookie}") == session
    assert read(f"{SESSION_COOKIE}={cookie[:-2]}xx") == {}  # a forged signature
    assert read(f"{SESSION_COOKIE}=") == {} and read("other=1") == {}


def test_websocket_routes_match_as_the_lane_expects():
    from starlette.routing import Match

    lanes = create_app(load_settings())
    by_path = {route.path: route for route in lanes._ws_routes}
    assert set(by_path) == {"/ws/venues/{id:int}/feed", "/ws/me", "/ws/wallboard"}

    def match(path: str):
        scope = {"type": "websocket", "path": path, "root_path": "", "headers": []}
        return by_path["/ws/venues/{id:int}/feed"].matches(scope)

    found, child = match("/ws/venues/42/feed")
    assert found is Match.FULL and child["path_params"] == {"id": 42}
    assert child["endpoint"] is by_path["/ws/venues/{id:int}/feed"].endpoint
    assert match("/ws/venues/x/feed")[0] is Match.NONE
    assert match("/ws/venues/99999999999/feed")[0] is Match.NONE  # past a 32-bit id
