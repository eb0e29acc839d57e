"""Real server processes driven by a real websockets client: two web processes on one Redis,
concurrent scans with reconnecting registrars, and a Redis kill -9 in the middle."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import orjson
import pytest
from websockets.sync.client import connect

from realtime.embedded import start_redis
from tests.conftest import ADMIN
from tests.servers import free_port, start_server


def _setup(url: str, visitors: int, logbooks: int = 1):
    """Owner, venue, logbooks and visitors through the real HTTP API of a server."""
    from datetime import date

    from models.idnumber import make_id_number

    with httpx.Client(base_url=url, timeout=10) as http:
        def citizen(name: str, seq: int) -> dict:
            id_number = make_id_number("110101", date(1980, 1, 1 + seq % 28), seq)
            if seq >= 1000:
                id_number = make_id_number("110102", date(1981, 1 + seq % 12, 1), seq)
            r = http.post("/api/admin/citizens", headers=ADMIN,
                          json={"name": name, "id_number": id_number})
            assert r.status_code == 201, r.text
            return {"Authorization": "Bearer " + r.json()["token"]}

        owner = citizen("李四", 0)
        venue = http.post("/api/venues", headers=owner, json={
            "name": "商场", "address": "x", "district": "东城区", "category": "mall"}).json()
        books = [http.post(f"/api/venues/{venue['id']}/logbooks", headers=owner,
                           json={"label": f"入口{i}"}).json() for i in range(logbooks)]
        guests = [citizen(f"访客{i}", i + 1) for i in range(visitors)]
    return owner, venue, books, guests


def _ws(server, venue_id, headers, after=None):
    url = f"{server.ws_url}/ws/venues/{venue_id}/feed"
    if after is not None:
        url += f"?after={after}"
    # max_queue=None: a client that stops reading a long backlog and closes must not stall its
    # own close handshake behind websockets' receive-queue flow control.
    return connect(url, additional_headers=headers, open_timeout=10, max_queue=None)


def _recv(ws, timeout=10.0, skip=("occupancy", "checkout")) -> dict:
    """The next event but occupancy and checkouts (they come whenever a count changes)."""
    while True:
        event = orjson.loads(ws.recv(timeout=timeout))
        if event.get("type") not in skip:
            return event


def _collect_until(ws, ids: set[int], seen: list[int], timeout=15.0) -> None:
    deadline = time.monotonic() + timeout
    while not ids.issubset(seen):
        event = _recv(ws, max(0.1, deadline - time.monotonic()))
        if event["type"] == "checkin":
            seen.append(event["id"])


@pytest.fixture
def two_servers(engine):
    a, b = start_server(), start_server()
    yield a, b
    a.stop()
    b.stop()


def test_scan_through_one_process_reaches_registrar_on_the_other(two_servers):
    a, b = two_servers
    owner, venue, (book,), guests = _setup(a.url, 3)
    with _ws(b, venue["id"], owner) as ws:
        assert _recv(ws)["type"] == "ready"
        ids = []
        for guest in guests:
            r = httpx.post(f"{a.url}/api/scan", headers=guest, json={"code": book["token"]})
            assert r.status_code == 201
            ids.append(r.json()["checkin_id"])
            t0 = time.monotonic()
            event = _recv(ws)
            assert event["id"] == ids[-1]
            assert time.monotonic() - t0 < 2
        assert ids == sorted(ids)


def test_concurrent_scans_with_reconnecting_registrars_lose_nothing(two_servers):
    a, b = two_servers
    owner, venue, books, guests = _setup(a.url, 120, logbooks=3)
    accepted: list[int] = []
    lock = threading.Lock()

    def scan(i: int) -> None:
        server = (a, b)[i % 2]
        book = books[i % 3]
        r = httpx.post(f"{server.url}/api/scan", headers=guests[i], json={"code": book["token"]},
                       timeout=30)
        assert r.status_code == 201, r.text
        with lock:
            accepted.append(r.json()["checkin_id"])

    seen: list[int] = []
    stop = threading.Event()

    def registrar() -> None:
        """Reconnects every few events, alternating servers, resuming from the last id."""
        last = 0
        n = 0
        while not stop.is_set() or len(set(seen)) < len(accepted):
            with _ws((a, b)[n % 2], venue["id"], owner, after=last) as ws:
                n += 1
                got = 0
                while got < 7:
                    try:
                        event = _recv(ws, 1.0)
                    except TimeoutError:
                        break
                    if event["type"] == "checkin":
                        assert event["id"] > last, "out of order or duplicate"
                        seen.append(event["id"])
                        last = event["id"]
                        got += 1
            if stop.is_set() and len(set(seen)) >= len(accepted):
                return

    watcher = threading.Thread(target=registrar, daemon=True)
    watcher.start()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(scan, range(len(guests))))
    stop.set()
    watcher.join(60)
    assert not watcher.is_alive(), f"never seen: {sorted(set(accepted) - set(seen))}"
    assert len(accepted) == 120
    assert sorted(seen) == sorted(accepted)
    assert len(seen) == len(set(seen))


def test_redis_kill_and_restart_loses_no_checkin(engine, tmp_path):
    port = free_port()
    proc, url = start_redis(tmp_path / "r", port, persist=False)
    server = start_server(env={"REDIS_URL": url})
    try:
        owner, venue, (book,), guests = _setup(server.url, 6)
        with _ws(server, venue["id"], owner) as ws:
            assert _recv(ws)["type"] == "ready"
            seen: list[int] = []
            r = httpx.post(f"{server.url}/api/scan", headers=guests[0],
                           json={"code": book["token"]})
            first = r.json()["checkin_id"]
            _collect_until(ws, {first}, seen)

            proc.kill()  # kill -9: no chance to save anything
            proc.wait()
            during = []
            for guest in guests[1:4]:
                r = httpx.post(f"{server.url}/api/scan", headers=guest,
                               json={"code": book["token"]}, timeout=30)
                assert r.status_code == 201, r.text  # the database took it
                during.append(r.json()["checkin_id"])

            proc, _ = start_redis(tmp_path / "r", port, persist=False)
            _collect_until(ws, set(during), seen, timeout=20)
            after = httpx.post(f"{server.url}/api/scan", headers=guests[4],
                               json={"code": book["token"]}).json()["checkin_id"]
            _collect_until(ws, {after}, seen)
            assert seen == [first, *during, after]
    finally:
        server.stop()
        proc.kill()
