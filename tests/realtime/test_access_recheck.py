"""Access is rechecked live, across processes: two real web processes and a real `scanbook
worker`. A registrar who loses their duty (status no longer green, a violation) has every
venue feed they hold closed with 4403 within LIMIT of the commit, on whichever process holds
it; feeds of registrars who still have access stay open and keep delivering."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx2 as httpx
import orjson
import pytest
from sqlalchemy import insert, select
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from models.tables import Citizen, Logbook, Registrar, utcnow
from tests.faults.common import make_citizens, make_venue
from tests.servers import ROOT, start_server

CLOSE_FORBIDDEN = 4403
# Seconds from the commit that ends the duty to the close. The product closes them within a
# second (docs/registrars.md): 11-222 ms here, SQLite and PostgreSQL, with two busy loops
# beside the tests at load ~10; the slowest seen, 1.06 and 1.36 s, while seven engineers'
# test runs loaded the 2-core machine to 13-20. The bound is the loaded machine's.
LIMIT = 2.0


class Feed(threading.Thread):
    """One open /ws/venues/{id}/feed: records its events and when and how it closed."""

    def __init__(self, server, venue_id: int, headers: dict):
        super().__init__(daemon=True)
        self.url = f"{server.ws_url}/ws/venues/{venue_id}/feed"
        self.headers = headers
        self.events: list[dict] = []
        self.ready = threading.Event()
        self.closed = threading.Event()
        self.code: int | None = None
        self.closed_at: float | None = None  # wall clock, comparable with database times

    def run(self) -> None:
        with connect(self.url, additional_headers=self.headers, open_timeout=10,
                     close_timeout=2) as ws:
            try:
                while True:
                    event = orjson.loads(ws.recv())
                    self.events.append(event)
                    if event["type"] == "ready":
                        self.ready.set()
            except ConnectionClosed as exc:
                self.closed_at = time.time()
                self.code = exc.rcvd.code if exc.rcvd else None
                self.closed.set()

    def open(self) -> Feed:
        self.start()
        assert self.ready.wait(15), "the feed never got ready"
        return self

    def wait_for(self, predicate, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in list(self.events):
                if predicate(event):
                    return event
            time.sleep(0.02)
        raise AssertionError(f"not received; got {self.events}")


@pytest.fixture
def system(engine, tmp_path):
    """Web processes A and B and one `scanbook worker`, on the test's Redis and database."""
    a, b = start_server(), start_server()
    log = open(tmp_path / "worker.log", "ab")  # noqa: SIM115 - closed below
    worker = subprocess.Popen([sys.executable, "-m", "web.cli", "worker"], cwd=ROOT,
                              env=dict(os.environ), stdout=log, stderr=log)
    try:
        yield a, b
    finally:
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
        log.close()
        a.stop()
        b.stop()


def _venue(engine, url: str, owner: dict, co: dict, *, co_logbook: bool = False):
    """A venue of `owner` with one logbook, `co` its co-registrar (written straight to the
    database: how a co-registrar joins is not what this tests), and optionally a logbook
    `co` opened."""
    venue, (book,) = make_venue(url, owner, logbooks=1)
    with engine.begin() as conn:
        conn.execute(insert(Registrar.__table__).values(venue_id=venue["id"],
                                                        citizen_id=co["id"], role="co",
                                                        created_at=utcnow()))
    books = [book]
    if co_logbook:
        r = httpx.post(f"{url}/api/venues/{venue['id']}/logbooks", headers=co["headers"],
                       json={"label": "协管入口"}, timeout=10)
        assert r.status_code == 201, r.text
        books.append(r.json())
    return venue, books


def _wait_job(url: str, job_id: str) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = httpx.get(f"{url}/api/admin/jobs/{job_id}", headers=_admin(), timeout=10).json()
        if state["state"] in ("finished", "failed"):
            assert state["state"] == "finished", state
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def _admin() -> dict:
    from tests.conftest import ADMIN

    return ADMIN


def _status(engine, citizen_id: int):
    with engine.connect() as conn:
        return conn.execute(select(Citizen.status, Citizen.status_at)
                            .where(Citizen.id == citizen_id)).one()


def closed_in_time(feeds: list[Feed], since: float) -> None:
    """Every feed closed within LIMIT of `since` (the time the change was committed, or
    answered); the figure goes to the output (-s), for the record."""
    took = max(f.closed_at for f in feeds) - since
    print(f"feeds closed {took * 1000:.0f} ms after the change")
    assert took < LIMIT, f"the last feed closed {took * 1000:.0f} ms after the change"


def _scan_reaches(url: str, guest: dict, code: str, feeds: list[Feed]) -> None:
    r = httpx.post(f"{url}/api/scan", headers=guest["headers"], json={"code": code}, timeout=10)
    assert r.status_code == 201, r.text
    checkin_id = r.json()["checkin_id"]
    for feed in feeds:
        feed.wait_for(lambda e: e["type"] == "checkin" and e["id"] == checkin_id)
        assert not feed.closed.is_set()


def test_a_co_registrar_turned_red_loses_the_feed_on_the_other_process(engine, system):
    a, b = system
    owner, co, guest = make_citizens(engine, 3)
    venue, (book,) = _venue(engine, a.url, owner, co)
    co_feed = Feed(b, venue["id"], co["headers"]).open()
    owner_b = Feed(b, venue["id"], owner["headers"]).open()
    owner_a = Feed(a, venue["id"], owner["headers"]).open()

    r = httpx.post(f"{a.url}/api/admin/status-changes", headers=_admin(), timeout=10, json={
        "changes": [{"id_number": co["id_number"], "status": "red", "reason": "密接"}]})
    assert r.status_code == 202, r.text
    assert co_feed.closed.wait(30), "the co-registrar's feed stayed open"
    status, changed_at = _status(engine, co["id"])
    assert status == "red"
    assert co_feed.code == CLOSE_FORBIDDEN
    closed_in_time([co_feed], changed_at.timestamp())
    _wait_job(a.url, r.json()["job_id"])

    # The owner still has access: both of their feeds stay open and keep delivering.
    _scan_reaches(a.url, guest, book["token"], [owner_a, owner_b])
    # And the co-registrar cannot come back.
    again = Feed(a, venue["id"], co["headers"])
    again.start()
    assert again.closed.wait(10) and again.code == CLOSE_FORBIDDEN
    assert not again.ready.is_set()


def test_a_violation_closes_every_feed_of_the_registrar_and_no_other(engine, system):
    a, b = system
    owner, co, guest = make_citizens(engine, 3)
    venue, (book, co_book) = _venue(engine, a.url, owner, co, co_logbook=True)
    other, (other_book,) = _venue(engine, a.url, owner, co)
    co_feeds = [Feed(b, venue["id"], co["headers"]).open(),
                Feed(a, other["id"], co["headers"]).open()]
    owner_feed = Feed(b, venue["id"], owner["headers"]).open()

    r = httpx.post(f"{a.url}/api/admin/violations", headers=_admin(), timeout=10,
                   json={"citizen_id": co["id"], "reason": "未核验健康码"})
    assert r.status_code == 202, r.text
    for feed in co_feeds:
        assert feed.closed.wait(30), "a feed of the suspended registrar stayed open"
        assert feed.code == CLOSE_FORBIDDEN
    with engine.connect() as conn:
        state, suspended_at = conn.execute(select(Logbook.state, Logbook.state_at)
                                           .where(Logbook.id == co_book["id"])).one()
    assert state == "suspended"
    closed_in_time(co_feeds, suspended_at.timestamp())
    # The owner hears of the suspended logbook and keeps the feed.
    owner_feed.wait_for(lambda e: e["type"] == "logbook" and e["logbook_id"] == co_book["id"]
                        and e["state"] == "suspended")
    _scan_reaches(a.url, guest, book["token"], [owner_feed])


def test_an_owner_whose_logbooks_are_revoked_loses_the_feed_the_co_registrar_keeps(
        engine, system):
    a, b = system
    owner, co, guest = make_citizens(engine, 3)
    venue, (book, co_book) = _venue(engine, a.url, owner, co, co_logbook=True)
    owner_feeds = [Feed(a, venue["id"], owner["headers"]).open(),
                   Feed(b, venue["id"], owner["headers"]).open()]
    co_feed = Feed(b, venue["id"], co["headers"]).open()

    r = httpx.post(f"{a.url}/api/admin/status-changes", headers=_admin(), timeout=10, json={
        "changes": [{"id_number": owner["id_number"], "status": "yellow", "reason": "居家"}]})
    assert r.status_code == 202, r.text
    for feed in owner_feeds:
        assert feed.closed.wait(30), "the owner's feed stayed open"
        assert feed.code == CLOSE_FORBIDDEN
    _status_now, changed_at = _status(engine, owner["id"])
    closed_in_time(owner_feeds, changed_at.timestamp())
    revoked = co_feed.wait_for(lambda e: e["type"] == "logbook" and e["logbook_id"] == book["id"])
    assert revoked["state"] == "revoked"
    _scan_reaches(b.url, guest, co_book["token"], [co_feed])


def test_a_deleted_logbook_ends_no_duty(engine, system):
    """Deleting a logbook is a change of the venue, not of anyone's duty: every registrar's
    feed stays open and hears of it."""
    a, b = system
    owner, co, guest = make_citizens(engine, 3)
    venue, (book, co_book) = _venue(engine, a.url, owner, co, co_logbook=True)
    co_feed = Feed(b, venue["id"], co["headers"]).open()
    owner_feed = Feed(a, venue["id"], owner["headers"]).open()
    r = httpx.delete(f"{a.url}/api/logbooks/{co_book['id']}", headers=owner["headers"],
                     timeout=10)
    assert r.status_code == 204
    for feed in (co_feed, owner_feed):
        feed.wait_for(lambda e: e["type"] == "logbook" and e["state"] == "deleted")
    _scan_reaches(a.url, guest, book["token"], [co_feed, owner_feed])
