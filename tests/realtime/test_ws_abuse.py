"""WebSocket abuse against a real uvicorn process: garbage text, binary frames, oversized
frames and floods each end that connection with a close code, never a server error, and the
server keeps serving everyone else."""

from __future__ import annotations

import time

import httpx2 as httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from realtime.feed import FLOOD_MESSAGES, MAX_CLIENT_FRAME
from tests.realtime.test_processes import _setup
from tests.servers import start_server

WS_MAX_SIZE = 65536  # uvicorn's --ws-max-size in tests/servers.py and web/cli.py

# (what the client sends, the close code it gets)
ABUSE = {
    "garbage text": (["hello{"], 1008),
    "json that is not an object": (["[1, 2, 3]"], 1008),
    "binary frame": ([b"\x00\xff\x00"], 1003),
    "frame over the feed's limit": (["x" * (MAX_CLIENT_FRAME + 1)], 1009),
    "frame over uvicorn's limit": ([b"y" * (WS_MAX_SIZE + 1)], 1009),
    "message flood": (['{"type":"pong"}'] * (FLOOD_MESSAGES + 5), 4429),
}


def _ready(ws) -> dict:
    event = orjson.loads(ws.recv(timeout=10))
    assert event["type"] == "ready", event
    return event


def _closed_with(ws, frames: list) -> int:
    """Send the frames (the server may close midway), then the close code received."""
    try:
        for frame in frames:
            ws.send(frame)
    except ConnectionClosed:
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            ws.recv(timeout=deadline - time.monotonic())
        except ConnectionClosed:
            assert ws.close_code is not None
            return ws.close_code
    pytest.fail("the server did not close the connection")


def test_abuse_is_refused_with_close_codes_and_others_keep_their_feed(engine, capfd):
    server = start_server()
    try:
        owner, venue, (book,), guests = _setup(server.url, 2)
        feed_url = f"{server.ws_url}/ws/venues/{venue['id']}/feed"
        with connect(feed_url, additional_headers=owner, open_timeout=10) as observer:
            _ready(observer)
            for name, (frames, code) in ABUSE.items():
                with connect(feed_url, additional_headers=owner, open_timeout=10) as ws:
                    _ready(ws)
                    assert _closed_with(ws, frames) == code, name
            with connect(f"{server.ws_url}/ws/me", additional_headers=guests[0],
                         open_timeout=10) as ws:
                _ready(ws)
                assert _closed_with(ws, ["not json"]) == 1008

            # A polite client's small JSON objects are ignored, and it stays connected.
            with connect(feed_url, additional_headers=owner, open_timeout=10) as polite:
                _ready(polite)
                for _ in range(3):
                    polite.send('{"type":"pong"}')
                r = httpx.post(f"{server.url}/api/scan", headers=guests[1],
                               json={"code": book["token"]}, timeout=10)
                assert r.status_code == 201, r.text
                checkin_id = r.json()["checkin_id"]
                for ws in (polite, observer):
                    event = orjson.loads(ws.recv(timeout=10))
                    while event["type"] == "ping":
                        event = orjson.loads(ws.recv(timeout=10))
                    assert event["type"] == "checkin" and event["id"] == checkin_id

        assert server.proc.poll() is None
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    finally:
        server.stop()
    log = capfd.readouterr().err
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log


BAD_AFTER = ["9223372036854775808", "9223372036854775807", "-1", "-9223372036854775809", "abc",
             "1e3", "１２", "+5", "1_0", " 5", "5 ", "0x10", "9" * 100, "1.5", "%00"]


def test_every_bad_after_closes_1008_without_a_traceback(engine, capfd):
    from urllib.parse import quote

    server = start_server()
    try:
        owner, venue, _books, guests = _setup(server.url, 1)
        # (path, who, the largest id it takes: its id column's)
        paths = [(f"/ws/venues/{venue['id']}/feed", owner, 2**62),
                 ("/ws/me", guests[0], 2**31 - 1)]
        for path, headers, largest in paths:
            for bad in [*BAD_AFTER, str(largest + 1)]:
                url = f"{server.ws_url}{path}?after={quote(bad, safe='%')}"
                with connect(url, additional_headers=headers, open_timeout=10) as ws:
                    with pytest.raises(ConnectionClosed):
                        ws.recv(timeout=10)
                    assert ws.close_code == 1008, (path, bad)
            with connect(f"{server.ws_url}{path}?after={largest}", additional_headers=headers,
                         open_timeout=10) as ws:
                assert _ready(ws)["last_id"] == largest
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    finally:
        server.stop()
    log = capfd.readouterr().err
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log
