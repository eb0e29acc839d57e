"""kill -9 one of two web processes while registrars are connected to it and scans flow
through both: the registrars reconnect to the other process with the last id they saw and
resume — every check-in exactly once, in order; phones whose request died with the process
send it again to the other one and get their check-in (201, or 200 and the same check-in when
the first attempt had committed)."""

from __future__ import annotations

import time

from realtime.embedded import start_redis
from tests.faults.common import (
    ScanLoad,
    accepted_ids,
    make_citizens,
    make_venue,
    start_registrars,
    summary,
    venue_checkins,
)
from tests.servers import free_port, start_server


def test_web_process_kill_9_registrars_resume_on_the_other(engine, tmp_path):
    redis_proc, url = start_redis(tmp_path / "redis", free_port(), persist=False)
    a = start_server(env={"REDIS_URL": url})
    b = start_server(env={"REDIS_URL": url})
    registrars = []
    try:
        owner, *guests = make_citizens(engine, 501)
        venue, books = make_venue(b.url, owner, logbooks=4)
        # Three consoles on A (they fail over to B); one on B from the start, which must also
        # get what A committed just before it died.
        registrars = start_registrars([[a.ws_url, b.ws_url]] * 3 + [[b.ws_url]], venue["id"],
                                      owner["headers"])
        load = ScanLoad([a.url, b.url], guests, [book["token"] for book in books],
                        threads=8, pause=0.02, retry_elsewhere=True).start()
        # A has taken scans (its registrars saw them) before it dies; on a loaded machine the
        # first ones can take seconds (the writer process starts), so wait for them.
        assert load.wait_for(lambda x: x.status == 201 and x.server == a.url, timeout=30)
        a.kill()  # SIGKILL: in-flight requests, open feeds and the feed lock die with it
        killed_at = time.monotonic()
        # B goes on taking scans after the failover (asserted below): wait until it has.
        assert load.wait_for(lambda x: x.status == 201 and x.server == b.url
                             and x.started > killed_at + 1, timeout=30), "B kept taking scans"
        answers = load.stop()
        print(summary(answers, killed_at, killed_at))

        no_answer = [x for x in answers if x.status is None]
        assert all(x.server == a.url for x in no_answer), no_answer[:3]
        assert all(x.started < killed_at + 1 or x.error for x in no_answer)
        wrong = [(x.status, x.body) for x in answers if x.status not in (None, 200, 201)]
        assert not wrong, wrong[:5]
        assert any(x.status == 201 and x.server == b.url and x.started > killed_at + 1
                   for x in answers), "B kept taking scans"
        accepted = accepted_ids(answers, (200, 201))
        assert len(accepted_ids(answers)) == len(set(accepted_ids(answers)))
        in_db = venue_checkins(engine, venue["id"])
        # Every answered check-in is in the database, and every row there was answered to
        # its phone (a retried request finds its first attempt's row: nothing orphaned).
        assert set(accepted) == set(in_db)
        for registrar in registrars:
            assert registrar.wait_for(set(in_db), timeout=20), (
                registrar.name, sorted(set(in_db) - set(registrar.seen))[:10])
        for registrar in registrars:
            assert not registrar.errors, registrar.errors[:5]
            assert registrar.seen == in_db, registrar.name  # each once, in commit order
        assert all(r.connects >= 2 for r in registrars[:3])  # they did reconnect to B
    finally:
        for registrar in registrars:
            registrar.stop()
        a.kill()
        b.stop()
        redis_proc.kill()
        redis_proc.wait()
