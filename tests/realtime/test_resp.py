"""The lean Redis client (realtime/resp.py) against a real Redis: replies of every kind the
scan path reads, errors, pipelining, a subscriber receiving what it publishes, reconnecting
after the server closes the connection, and failing fast with redis-py's exception types."""

from __future__ import annotations

import asyncio
import os

import pytest
import redis

from realtime import resp
from realtime.connection import sync_client
from tests.servers import free_port

URL = os.environ["REDIS_URL"]


def run(coro):
    return asyncio.run(coro)


def test_encode_is_resp():
    assert resp.encode(("SET", "k", 5, b"\x00v")) == (
        b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n5\r\n$2\r\n\x00v\r\n")


def test_replies_of_each_kind_and_errors(redis_client):
    async def go():
        client = resp.LeanRedis(URL)
        try:
            assert await client.execute("PING") == b"PONG"
            assert await client.execute("SET", "sb:test:resp", "值") == b"OK"
            assert (await client.execute("GET", "sb:test:resp")).decode() == "值"
            assert await client.execute("GET", "sb:test:missing") is None
            assert await client.eval("return {1, 2, 3}", 0) == [1, 2, 3]
            assert await client.eval("return redis.call('INCR', KEYS[1])", 1,
                                     "sb:test:n") == 1
            with pytest.raises(redis.ResponseError):
                await client.execute("NOSUCHCOMMAND")
            assert await client.execute("PING") == b"PONG"  # still in step after an error
        finally:
            await client.aclose()

    run(go())
    assert redis_client.get("sb:test:n") == b"1"


def test_concurrent_commands_get_their_own_replies():
    async def go():
        client = resp.LeanRedis(URL)
        try:
            replies = await asyncio.gather(*(client.eval("return ARGV[1]", 0, str(i))
                                             for i in range(500)))
            return replies
        finally:
            await client.aclose()

    assert run(go()) == [str(i).encode() for i in range(500)]


def test_publish_reaches_a_subscriber():
    subscriber = sync_client(URL).pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe("sb:test:channel")

    async def go():
        client = resp.LeanRedis(URL)
        try:
            return await client.publish("sb:test:channel", b'{"id": 1}')
        finally:
            await client.aclose()

    try:
        assert run(go()) == 1
        message = None
        for _ in range(20):  # the subscribe confirmation comes first (and reads as None)
            message = subscriber.get_message(timeout=0.2)
            if message:
                break
        assert message and message["data"] == b'{"id": 1}'
    finally:
        subscriber.close()


def test_reconnects_after_the_server_drops_the_connection(redis_client):
    async def go():
        client = resp.LeanRedis(URL)
        try:
            await client.execute("CLIENT", "SETNAME", "sb-lean-test")
            redis_client.client_kill_filter(_type="normal", skipme=True)
            await asyncio.sleep(0.1)
            # The dropped connection fails at most the command in flight; the next connects.
            try:
                await client.execute("PING")
            except redis.ConnectionError:
                pass
            return await client.execute("PING")
        finally:
            await client.aclose()

    assert run(go()) == b"PONG"


def test_unreachable_redis_fails_fast_with_redis_errors():
    async def go():
        client = resp.LeanRedis(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(redis.ConnectionError):
            await client.publish("sb:test:x", b"x")
        return loop.time() - started

    assert run(go()) < 1.0


def test_only_plain_urls_are_supported():
    assert resp.supports("redis://127.0.0.1:6379/0")
    assert resp.supports("unix:///tmp/redis.sock?db=1")
    assert not resp.supports("rediss://example:6380/0")
    assert not resp.supports("redis+sentinel://h1:26379/mymaster/0")
