"""Feed order per venue with two web processes on PostgreSQL: writers of different venues
never wait for each other, and a registrar who resumes with the last id they saw, on either
process, misses nothing and sees nothing twice."""

from __future__ import annotations

import threading
import time

import httpx2 as httpx
import pytest
from sqlalchemy import text

from models.db import CHECKIN_LOCK
from realtime.embedded import start_redis
from tests.faults.common import (
    Registrar,
    ScanLoad,
    accepted_ids,
    make_citizens,
    make_venue,
    venue_checkins,
)
from tests.servers import free_port, start_server


@pytest.fixture
def two_processes(engine, tmp_path):
    if engine.dialect.name != "postgresql":
        pytest.skip("per-venue writers: PostgreSQL (SQLite has one writer at a time)")
    redis_proc, url = start_redis(tmp_path / "redis", free_port(), persist=False)
    a = start_server(env={"REDIS_URL": url})
    b = start_server(env={"REDIS_URL": url})
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()
        redis_proc.kill()
        redis_proc.wait()


def _scan(base_url: str, citizen: dict, code: str) -> httpx.Response:
    return httpx.post(f"{base_url}/api/scan", headers=citizen["headers"],
                      json={"code": code}, timeout=30)


def test_a_writer_holding_one_venue_holds_up_no_other(engine, two_processes):
    a, b = two_processes
    owner_one, owner_two, *guests = make_citizens(engine, 6)
    one, (book_one,) = make_venue(a.url, owner_one, logbooks=1)
    two, (book_two,) = make_venue(a.url, owner_two, logbooks=1)
    assert _scan(a.url, guests[0], book_one["token"]).status_code == 201  # writers are up
    assert _scan(b.url, guests[0], book_two["token"]).status_code == 201
    answered: dict = {}
    with engine.connect() as holder:  # another writer, in the middle of venue one's batch
        holder.execute(text(f"SELECT pg_advisory_lock({CHECKIN_LOCK}, :v)"), {"v": one["id"]})
        holder.commit()
        started = time.monotonic()
        r = _scan(a.url, guests[1], book_two["token"])
        other_venue = time.monotonic() - started
        waiter = threading.Thread(target=lambda: answered.setdefault(
            "r", _scan(b.url, guests[2], book_one["token"])))
        waiter.start()
        time.sleep(1.5)
        held_up = "r" not in answered
        holder.execute(text(f"SELECT pg_advisory_unlock({CHECKIN_LOCK}, :v)"), {"v": one["id"]})
        holder.commit()
        released = time.monotonic()
        waiter.join(10)
    assert r.status_code == 201 and other_venue < 1.0, other_venue
    assert held_up, "a scan at the held venue must wait for its feed order"
    assert answered["r"].status_code == 201
    assert time.monotonic() - released < 5


def test_two_processes_resuming_registrars_miss_nothing_and_see_nothing_twice(
        engine, two_processes):
    a, b = two_processes
    owners = make_citizens(engine, 3)
    guests = make_citizens(engine, 300, first=3)
    venues, codes = [], []
    for owner in owners:
        venue, books = make_venue(a.url, owner, logbooks=2)
        venues.append(venue)
        codes += [book["token"] for book in books]
    # Two registrars a venue, one starting on each process; every 0.4 s each leaves and
    # resumes on the other process with the last id it saw.
    registrars = [Registrar(urls, venue["id"], owner["headers"], f"v{venue['id']}-{i}",
                            hop=0.4)
                  for venue, owner in zip(venues, owners, strict=True)
                  for i, urls in enumerate(([a.ws_url, b.ws_url], [b.ws_url, a.ws_url]))]
    for registrar in registrars:
        registrar.start()
    try:
        for registrar in registrars:
            assert registrar.ready.wait(15), registrar.name
        load = ScanLoad([a.url, b.url], guests, codes, threads=8, pause=0.005).start()
        time.sleep(4)
        answers = load.stop()
        assert not [x for x in answers if x.status != 201], [
            (x.status, x.body, x.error) for x in answers if x.status != 201][:5]
        accepted = accepted_ids(answers)
        assert len(accepted) >= 20  # (a loaded 2-core machine manages ~10 a second)
        by_venue = {venue["id"]: venue_checkins(engine, venue["id"]) for venue in venues}
        assert sorted(accepted) == sorted(i for ids in by_venue.values() for i in ids)
        for registrar, venue in zip(registrars, [v for v in venues for _ in (0, 1)],
                                    strict=True):
            expected = by_venue[venue["id"]]
            assert registrar.wait_for(set(expected), timeout=20), registrar.name
            assert not registrar.errors, registrar.errors[:5]
            assert registrar.seen == expected, registrar.name  # each once, in id order
            assert registrar.connects >= 3, registrar.connects  # it did resume, both ways
    finally:
        for registrar in registrars:
            registrar.stop()
