"""Running the RQ worker: JSON serializer, job modules imported before the first fork, dead
workers' jobs handed on at start (workers.recovery), and the cron scheduler (retention) in a
thread. `scanbook worker` is meant to call run_worker().

Two Redis clients, never one: RQ waits for jobs with a blocking BLMOVE of DEQUEUE_TIMEOUT
seconds, which needs a read timeout longer than that on every connection it may get, while
everything else here sends short commands, where a short timeout finds a dead Redis quickly.
A connection keeps the timeout it was made with, so a client shared with the start-up work
(redis-py's default: 5 s) handed RQ's wait a 5-second connection on about half of the starts,
and the worker then timed out every 5 s and backed off for up to a minute between waits.
See docs/redis-clients.md.

RQ forks a work horse per job. A horse that has to import the job's module (SQLAlchemy,
SQLModel, the domain) first spends about a second on it — every job, because each horse is
a fresh fork of a parent that never imported it. Importing the job modules in the parent once
makes the horse start warm: a registrar's revocation is a ~50 ms job instead of a 1 s one.

    python -m workers.runner [--burst] [--no-cron]
"""

from __future__ import annotations

import argparse
import importlib
import logging
import socket
import sys

import redis

from realtime.connection import sync_client

# Every module that holds jobs (the dotted paths enqueue() names).
JOB_MODULES = ("workers.status", "workers.retention", "workers.stays")

# RQ's own default worker TTL, passed explicitly so the numbers below follow from it: RQ
# blocks for WORKER_TTL - 15 s waiting for a job, then refreshes its heartbeat and waits again.
WORKER_TTL = 420
DEQUEUE_TIMEOUT = WORKER_TTL - 15
# The worker's blocking connections: longer than any wait RQ makes (RQ asks for the wait + 10
# and would raise the timeout itself, but only for connections made after it looked).
BLOCKING_READ_TIMEOUT = DEQUEUE_TIMEOUT + 15
# Short commands (recovery at start, the cron thread): a Redis that does not answer within
# this is down, and the caller's retry loop takes over.
COMMAND_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0
# A Redis that vanished without closing the connection (a dead host) would otherwise leave a
# wait hanging for BLOCKING_READ_TIMEOUT: TCP keepalive probes find it in about a minute.
KEEPALIVE = {getattr(socket, name): value for name, value in (
    ("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)) if hasattr(socket, name)}


def blocking_client(url: str) -> redis.Redis:
    """The worker's own client, used by RQ alone (its waits, heartbeats and job updates)."""
    return sync_client(url, socket_timeout=BLOCKING_READ_TIMEOUT,
                       socket_connect_timeout=CONNECT_TIMEOUT, socket_keepalive=True,
                       socket_keepalive_options=KEEPALIVE)


def command_client(url: str) -> redis.Redis:
    """The client for short commands beside the worker: recovery and the cron scheduler."""
    return sync_client(url, socket_timeout=COMMAND_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT)


def preload() -> None:
    """Import the job modules (and with them the whole domain) in the parent process."""
    for name in JOB_MODULES:
        importlib.import_module(name)


def make_worker(url: str):
    """The RQ worker of the scanbook queue, on a blocking client of its own."""
    from rq import Worker
    from rq.serializers import JSONSerializer

    from workers.queues import QUEUE

    class ScanbookWorker(Worker):
        def unsubscribe(self) -> None:
            """RQ's, with its command thread told to stop before the UNSUBSCRIBE goes out.
            RQ stops the thread after sending it; a thread that reads the reply first polls
            again, and with no channel left that poll is a 60-s wait for a subscription,
            which redis-py 8.2's stop() joins: SIGTERM then took up to a minute to end
            the worker (seen on a loaded machine)."""
            thread = self.pubsub_thread
            if thread is not None:
                try:
                    thread.stop(timeout=0)  # redis-py >= 8.2 joins in stop(): not here
                except TypeError:  # older redis-py: stop() only clears the flag
                    thread.stop()
            super().unsubscribe()

    return ScanbookWorker([QUEUE], connection=blocking_client(url), serializer=JSONSerializer,
                          worker_ttl=WORKER_TTL)


def run_worker(url: str, *, burst: bool = False, cron: bool = True) -> bool:
    """Work the scanbook queue of the Redis at `url` until stopped (or until it is empty,
    with burst).

    With cron, this process also runs the cron scheduler (retention) in a thread; more than
    one scheduler running is harmless (the retention job is idempotent)."""
    from workers.recovery import requeue_orphans

    preload()
    commands = command_client(url)
    requeue_orphans(commands)  # jobs of a worker that was killed: now, not in 10 minutes
    stop = None
    if cron and not burst:
        from workers.schedule import start_thread

        _thread, stop = start_thread(commands)
    try:
        return make_worker(url).work(with_scheduler=True, burst=burst)
    finally:
        if stop is not None:
            stop.set()
        commands.close()


def main(argv: list[str] | None = None) -> int:
    from workers.context import redis_url

    parser = argparse.ArgumentParser(prog="python -m workers.runner")
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--no-cron", action="store_true", help="don't run the cron scheduler")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_worker(redis_url(), burst=args.burst, cron=not args.no_cron)
    return 0


if __name__ == "__main__":
    sys.exit(main())
