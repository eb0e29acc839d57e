"""Rate limits: POST /api/scan per citizen (429 rate_limited with Retry-After), the limiter's
window, and failing open when Redis is away."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from tests.conftest import People, client_with
from tests.servers import free_port
from web.ratelimit import RateLimiter, TooManyRequests, connect


@pytest.fixture
def tight_client():
    with client_with(scan_rate_per_min=3,
                     proxy_check_rate_per_min=2) as c:
        yield c


def test_scan_is_limited_per_citizen(tight_client, redis_client):
    people = People(tight_client)
    alice, bob = people.make("王五"), people.make("赵六")
    for _ in range(3):  # unknown codes count too: the limit is what stops code guessing
        r = tight_client.post("/api/scan", headers=alice["headers"], json={"code": "nope"})
        assert r.status_code == 404, r.text
    r = tight_client.post("/api/scan", headers=alice["headers"], json={"code": "nope"})
    assert r.status_code == 429
    body = r.json()
    assert body["error"] == "rate_limited" and body["message"]
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert body["retry_after"] == int(r.headers["Retry-After"])
    # Someone else at the same moment is not affected.
    r = tight_client.post("/api/scan", headers=bob["headers"], json={"code": "nope"})
    assert r.status_code == 404
    # Nor are the caller's other endpoints.
    assert tight_client.get("/api/me", headers=alice["headers"]).status_code == 200


def test_a_valid_scan_over_the_limit_is_refused_and_not_recorded(tight_client):
    # The verdict is waited for by the check-in writer, in the batch (web/api_citizen.py).
    people = People(tight_client)
    owner, visitor = people.make("李四"), people.make("王五")
    venue = tight_client.post("/api/venues", headers=owner["headers"], json={
        "name": "朝阳大悦城", "address": "朝阳北路101号", "district": "朝阳区",
        "category": "mall", "capacity": 500}).json()
    books = [tight_client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                               json={"label": f"门{i}"}).json() for i in range(4)]
    codes = [tight_client.post("/api/scan", headers=visitor["headers"],
                               json={"code": book["token"]}).status_code for book in books]
    assert codes == [201, 201, 201, 429]
    recorded = [len(tight_client.get(f"/api/logbooks/{book['id']}/checkins",
                                     headers=owner["headers"]).json()["items"])
                for book in books]
    assert recorded == [1, 1, 1, 0]


def test_proxy_check_is_limited_per_caller(tight_client):
    people = People(tight_client)
    caller, subject = people.make("王五"), people.make("赵六")
    ask = {"name": "赵六", "id_number": subject["id_number"]}
    for _ in range(2):
        r = tight_client.post("/api/proxy-check", headers=caller["headers"], json=ask)
        assert r.status_code == 200, r.text
    r = tight_client.post("/api/proxy-check", headers=caller["headers"], json=ask)
    assert r.status_code == 429 and r.json()["error"] == "rate_limited"
    assert int(r.headers["Retry-After"]) >= 1
    # The scan limit is a separate bucket.
    r = tight_client.post("/api/scan", headers=caller["headers"], json={"code": "nope"})
    assert r.status_code == 404


def test_unauthenticated_scans_are_refused_before_counting(tight_client, redis_client):
    for _ in range(5):
        r = tight_client.post("/api/scan", json={"code": "x"})
        assert r.status_code == 401
    assert not redis_client.keys("sb:rl:*")


def test_default_limit_leaves_room_for_normal_use(client, people, venue_with_logbook):
    _, _, book = venue_with_logbook
    guest = people.make("孙七")
    for _ in range(10):  # re-scans at the same door within a minute: 1 + 9 repeats
        r = client.post("/api/scan", headers=guest["headers"], json={"code": book["token"]})
        assert r.status_code in (200, 201), r.text


def test_window_resets_and_limit_zero_turns_off(redis_client):
    async def next_second():
        await asyncio.sleep(1.02 - time.time() % 1)

    async def run():
        limiter = RateLimiter(connect(os.environ["REDIS_URL"]))
        try:
            await next_second()
            assert await limiter.hit("t", 1, limit=2, window=1) == 1
            assert await limiter.hit("t", 1, limit=2, window=1) == 2
            await next_second()  # a new window counts from one again
            assert await limiter.hit("t", 1, limit=2, window=1) == 1
            await limiter.hit("t", 1, limit=2, window=1)
            with pytest.raises(TooManyRequests) as caught:
                await limiter.hit("t", 1, limit=2, window=1)
            assert caught.value.retry_after == 1
            assert await limiter.hit("t", 1, limit=0) == 0
        finally:
            await limiter.close()

    asyncio.run(run())
    for key in redis_client.keys("sb:rl:t:*"):
        assert 0 < redis_client.ttl(key) <= 2


def test_hits_that_arrive_together_are_each_counted(redis_client):
    async def run():
        limiter = RateLimiter(connect(os.environ["REDIS_URL"]))
        try:
            results = await asyncio.gather(
                *(limiter.hit("together", 7, limit=50, window=10**6) for _ in range(80)),
                *(limiter.hit("together", 8, limit=50, window=10**6) for _ in range(10)),
                return_exceptions=True)
        finally:
            await limiter.close()
        return results

    results = asyncio.run(run())
    seven, eight = results[:80], results[80:]
    assert sorted(r for r in seven if isinstance(r, int)) == list(range(1, 51))
    assert sum(isinstance(r, TooManyRequests) for r in seven) == 30
    assert sorted(eight) == list(range(1, 11))


def test_fails_open_quickly_without_redis():
    async def run():
        limiter = RateLimiter(connect(f"redis://127.0.0.1:{free_port()}/0"))
        try:
            started = time.monotonic()
            for _ in range(50):
                assert await limiter.hit("scan", 1, limit=1) == 0
            # One failed attempt, then it stops asking for a while.
            assert time.monotonic() - started < 1
        finally:
            await limiter.close()

    asyncio.run(run())


def test_scans_refused_in_the_web_process_count_in_the_same_bucket(tight_client):
    # A code no logbook can have is refused before the check-in writer (web/api_citizen.py)
    # and counted there; a well-formed one is counted by the writer. One limit for both.
    visitor = People(tight_client).make("钱七")
    statuses = [tight_client.post("/api/scan", headers=visitor["headers"],
                                  json={"code": code}).status_code
                for code in ("bad code!", "nope", "bad code!", "nope", "bad code!")]
    assert statuses == [404, 404, 404, 429, 429]
