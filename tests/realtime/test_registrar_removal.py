"""A co-registrar removed by the owner, or who leaves, loses every feed of the venue within
test_access_recheck's LIMIT, on whichever web process holds it (two real web processes; the
removal goes through one, the feeds sit on both). The owner's feeds stay open and keep
delivering."""

from __future__ import annotations

import time

import httpx2 as httpx

from tests.faults.common import make_citizens, make_venue
from tests.realtime import test_access_recheck as recheck
from tests.realtime.test_access_recheck import (
    CLOSE_FORBIDDEN,
    Feed,
    _scan_reaches,
    closed_in_time,
)

system = recheck.system  # the fixture: web processes A and B and a worker


def _co_registrar(url: str, owner: dict, co: dict, venue_id: int) -> None:
    """Invited by the owner and accepted by `co`, through the API."""
    r = httpx.post(f"{url}/api/venues/{venue_id}/registrars", headers=owner["headers"],
                   json={"citizen_id": co["id"]}, timeout=10)
    assert r.status_code == 201, r.text
    r = httpx.post(f"{url}/api/invitations/{r.json()['id']}/accept", headers=co["headers"],
                   timeout=10)
    assert r.status_code == 200, r.text


def _remove(url: str, venue_id: int, who: dict, by: dict) -> float:
    """DELETE the registrar; the wall-clock time its (committed) answer arrived."""
    r = httpx.delete(f"{url}/api/venues/{venue_id}/registrars/{who['id']}",
                     headers=by["headers"], timeout=10)
    assert r.status_code == 204, r.text
    return time.time()


def _ids(url: str, people: list[dict]) -> None:
    for person in people:
        r = httpx.get(f"{url}/api/me", headers=person["headers"], timeout=10)
        person["id"] = r.json()["id"]


def test_a_removed_co_registrar_loses_the_feed_on_every_process(engine, system):
    a, b = system
    owner, co, guest = make_citizens(engine, 3)
    _ids(a.url, [owner, co])
    venue, (book,) = make_venue(a.url, owner, logbooks=1)
    _co_registrar(a.url, owner, co, venue["id"])
    co_feeds = [Feed(a, venue["id"], co["headers"]).open(),
                Feed(b, venue["id"], co["headers"]).open()]
    owner_feed = Feed(b, venue["id"], owner["headers"]).open()

    done = _remove(a.url, venue["id"], co, by=owner)
    for feed in co_feeds:
        assert feed.closed.wait(10), "the removed co-registrar's feed stayed open"
        assert feed.code == CLOSE_FORBIDDEN
    closed_in_time(co_feeds, done)
    _scan_reaches(a.url, guest, book["token"], [owner_feed])
    again = Feed(b, venue["id"], co["headers"])
    again.start()
    assert again.closed.wait(10) and again.code == CLOSE_FORBIDDEN


def test_a_co_registrar_who_leaves_loses_the_feed(engine, system):
    a, b = system
    owner, co, guest = make_citizens(engine, 3)
    _ids(a.url, [owner, co])
    venue, (book,) = make_venue(a.url, owner, logbooks=1)
    _co_registrar(b.url, owner, co, venue["id"])
    co_feed = Feed(b, venue["id"], co["headers"]).open()
    owner_feeds = [Feed(a, venue["id"], owner["headers"]).open(),
                   Feed(b, venue["id"], owner["headers"]).open()]

    done = _remove(a.url, venue["id"], co, by=co)
    assert co_feed.closed.wait(10), "the feed of a co-registrar who left stayed open"
    assert co_feed.code == CLOSE_FORBIDDEN
    closed_in_time([co_feed], done)
    _scan_reaches(b.url, guest, book["token"], owner_feeds)
