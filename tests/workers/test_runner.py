"""The worker's Redis clients (workers/runner.py, docs/redis-clients.md): RQ's blocking wait
gets connections whose read timeout outlasts it, on a client nothing else touches; the short
commands beside it keep a short timeout."""

from __future__ import annotations

import os
import time

import pytest
import redis

from workers.runner import (
    BLOCKING_READ_TIMEOUT,
    COMMAND_TIMEOUT,
    DEQUEUE_TIMEOUT,
    command_client,
    make_worker,
)


def _timeouts(client: redis.Redis) -> tuple[float | None, float | None]:
    kwargs = client.connection_pool.connection_kwargs
    return kwargs.get("socket_timeout"), kwargs.get("socket_connect_timeout")


def test_the_worker_blocks_on_a_client_of_its_own_with_a_timeout_past_its_wait():
    url = os.environ["REDIS_URL"]
    commands = command_client(url)
    commands.ping()  # the start-up work has made its connections by now
    worker = make_worker(url)
    try:
        assert worker.dequeue_timeout == DEQUEUE_TIMEOUT  # RQ's wait is what we planned for
        # RQ would raise a shorter timeout only for connections made after it looked; ours is
        # already past what RQ asks for, on a pool of its own.
        assert _timeouts(worker.connection)[0] == BLOCKING_READ_TIMEOUT
        assert BLOCKING_READ_TIMEOUT > worker.connection_timeout > worker.dequeue_timeout
        assert worker.connection.connection_pool is not commands.connection_pool
        assert _timeouts(commands) == (COMMAND_TIMEOUT, COMMAND_TIMEOUT)
    finally:
        worker.connection.close()
        commands.close()


def test_a_blocking_wait_past_redis_py_default_timeout_survives_on_the_worker_client():
    """The wait itself, for longer than redis-py's default 5 s read timeout: it returns empty
    on the worker's client, and times out on a command client (the fault it avoids)."""
    url = os.environ["REDIS_URL"]
    worker = make_worker(url)
    commands = command_client(url)
    try:
        started = time.monotonic()
        assert worker.connection.blmove("sb:test:empty", "sb:test:to", 6) is None
        assert time.monotonic() - started >= 6
        with pytest.raises(redis.TimeoutError):
            commands.blmove("sb:test:empty", "sb:test:to", COMMAND_TIMEOUT + 2)
    finally:
        worker.connection.close()
        commands.close()
