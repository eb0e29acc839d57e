"""The check-in writer's rate-limit counter (ingest/limits.py): a batch's scans counted in
one script call against a real Redis, refusals with the seconds left in the window, scans
without a limit left alone, and failing open at once when Redis is away."""

from __future__ import annotations

import os
import time

from ingest.limits import PREFIX, SCAN_BUCKET, SCAN_WINDOW, ScanCounter, connect_sync
from models.checkins import CheckinRequest
from models.errors import TooManyRequests
from realtime.connection import sync_client
from tests.servers import free_port


def _evals(client) -> int:
    return int(client.info("commandstats").get("cmdstat_eval", {}).get("calls", 0))


def _scan(citizen_id: int, limit: int = 3) -> CheckinRequest:
    return CheckinRequest(citizen_id=citizen_id, code="c", limit=limit)


def test_a_batch_is_counted_in_one_call_and_refused_past_the_limit(redis_client):
    citizen, other = 900_000 + os.getpid() % 1000 * 10, 900_001 + os.getpid() % 1000 * 10
    for key in redis_client.keys(f"{PREFIX}:{SCAN_BUCKET}:{citizen}:*"):
        redis_client.delete(key)
    counter = ScanCounter(sync_client(os.environ["REDIS_URL"]))
    # Four scans of one citizen (limit 3), one of another, one proxy check-in (no limit).
    batch = [_scan(citizen), _scan(other), _scan(citizen), _scan(citizen),
             CheckinRequest(citizen_id=citizen, logbook_id=1, via="proxy"), _scan(citizen)]
    before = _evals(redis_client)
    with counter.send(batch) as verdicts:
        refused = verdicts()
    assert _evals(redis_client) - before == 1
    assert list(refused) == [5]  # the fourth scan of `citizen`; the proxy one is not counted
    assert isinstance(refused[5], TooManyRequests)
    assert 1 <= refused[5].retry_after <= SCAN_WINDOW
    (key,) = redis_client.keys(f"{PREFIX}:{SCAN_BUCKET}:{citizen}:*")
    assert int(redis_client.get(key)) == 4
    assert 0 < redis_client.ttl(key) <= SCAN_WINDOW + 1
    # The next batch goes on counting in the same window.
    with counter.send([_scan(citizen, limit=10)]) as verdicts:
        assert verdicts() == {}
    assert int(redis_client.get(key)) == 5


def test_a_batch_that_never_reads_its_verdicts_leaves_the_connection_usable(redis_client):
    citizen = 910_000 + os.getpid() % 1000
    counter = ScanCounter(sync_client(os.environ["REDIS_URL"]))
    try:
        with counter.send([_scan(citizen)]):
            raise RuntimeError("the batch failed before its insert")
    except RuntimeError:
        pass
    for _ in range(3):  # a reply left on a pooled connection would answer the wrong call
        with counter.send([_scan(citizen, limit=100)]) as verdicts:
            assert verdicts() == {}
    (key,) = redis_client.keys(f"{PREFIX}:{SCAN_BUCKET}:{citizen}:*")
    assert int(redis_client.get(key)) == 4


def test_fails_open_at_once_and_backs_off_without_redis():
    counter = ScanCounter(connect_sync(f"redis://127.0.0.1:{free_port()}/0"))
    started = time.monotonic()
    for _ in range(50):
        with counter.send([_scan(1, limit=1), _scan(1, limit=1)]) as verdicts:
            assert verdicts() == {}
    assert time.monotonic() - started < 1
