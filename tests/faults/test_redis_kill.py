"""kill -9 Redis during a sustained scan load from several threads, then start it again on the
same port: every scan answered 201 is in the database and reaches every registrar's feed
exactly once; while Redis is down a scan answers 201 (the database took it) or 503
`unavailable`, always within the client's timeout."""

from __future__ import annotations

import time

from realtime.embedded import start_redis
from tests.faults.common import (
    ScanLoad,
    accepted_ids,
    assert_bounded,
    make_citizens,
    make_venue,
    start_registrars,
    summary,
    venue_checkins,
)
from tests.servers import free_port, start_server


def test_redis_kill_9_during_scan_load(engine, tmp_path):
    port = free_port()
    redis_proc, url = start_redis(tmp_path / "redis", port, persist=False)
    a = start_server(env={"REDIS_URL": url})
    b = start_server(env={"REDIS_URL": url})
    registrars = []
    try:
        owner, *guests = make_citizens(engine, 501)
        venue, books = make_venue(a.url, owner, logbooks=4)
        # Two registrars on one process, one on the other: every hub has to recover.
        registrars = start_registrars([[a.ws_url], [a.ws_url], [b.ws_url]], venue["id"],
                                      owner["headers"])
        load = ScanLoad([a.url, b.url], guests, [book["token"] for book in books],
                        threads=8, pause=0.02).start()

        time.sleep(1.5)
        before = load.count(201)
        redis_proc.kill()  # kill -9: no goodbye to anyone
        redis_proc.wait()
        killed_at = time.monotonic()
        time.sleep(2.5)
        redis_proc, _ = start_redis(tmp_path / "redis", port, persist=False)
        back_at = time.monotonic()
        time.sleep(2.0)
        answers = load.stop()

        print(summary(answers, killed_at, back_at))
        assert_bounded(answers)
        during = [x for x in answers if killed_at <= x.started < back_at]
        assert before > 0 and during, "the load did not span the outage"
        assert any(x.status == 201 for x in answers if x.started > back_at + 1)
        accepted = accepted_ids(answers)
        assert len(accepted) == len(set(accepted))
        in_db = venue_checkins(engine, venue["id"])
        # Every 201 is in the database, and nothing else is: a 503 left no record behind.
        assert sorted(accepted) == in_db
        for registrar in registrars:
            assert registrar.wait_for(set(in_db), timeout=20), (
                registrar.name, sorted(set(in_db) - set(registrar.seen))[:10])
        for registrar in registrars:
            assert not registrar.errors, registrar.errors[:5]
            assert registrar.seen == in_db, registrar.name  # each once, in commit order
    finally:
        for registrar in registrars:
            registrar.stop()
        a.stop()
        b.stop()
        redis_proc.kill()
        redis_proc.wait()
