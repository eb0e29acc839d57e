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


def test_the_worker_stops_its_command_thread_at_once_even_when_it_hears_the_unsubscribe_first():
    """RQ unsubscribes its command channel, then stops the thread that listens on it. When that
    thread reads the UNSUBSCRIBE reply before the stop (the main thread is descheduled: a
    loaded machine), it polled again — a 60-s wait for a subscription that stop() then joined.
    The delay after sending makes that order certain here."""
    worker = make_worker(os.environ["REDIS_URL"])
    try:
        worker.subscribe()
        pubsub, send = worker.pubsub, worker.pubsub.unsubscribe

        def unsubscribe_then_stall(*args):
            send(*args)
            deadline = time.monotonic() + 5
            while pubsub.subscribed and time.monotonic() < deadline:  # the thread read it
                time.sleep(0.01)
            time.sleep(0.2)  # and is polling again (before the fix: for 60 s)

        pubsub.unsubscribe = unsubscribe_then_stall
        started = time.monotonic()
        worker.unsubscribe()
        assert time.monotonic() - started < 3
        assert not worker.pubsub_thread.is_alive()
    finally:
        worker.connection.close()
