"""Running the RQ worker: JSON serializer, job modules imported before the first fork, dead
workers' jobs handed on at start (workers.recovery), and the cron scheduler (retention) in a
thread. `scanbook worker` is meant to call run_worker().

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
import sys

import redis

# Every module that holds jobs (the dotted paths enqueue() names).
JOB_MODULES = ("workers.status", "workers.retention")


def preload() -> None:
    """Import the job modules (and with them the whole domain) in the parent process."""
    for name in JOB_MODULES:
        importlib.import_module(name)


def run_worker(connection: redis.Redis, *, burst: bool = False, cron: bool = True) -> bool:
    """Work the scanbook queue until stopped (or until it is empty, with burst).

    With cron, this process also runs the cron scheduler (retention) in a thread; more than
    one scheduler running is harmless (the retention job is idempotent)."""
    from rq import Worker
    from rq.serializers import JSONSerializer

    from workers.queues import QUEUE
    from workers.recovery import requeue_orphans

    preload()
    requeue_orphans(connection)  # jobs of a worker that was killed: now, not in 10 minutes
    stop = None
    if cron and not burst:
        from workers.schedule import start_thread

        _thread, stop = start_thread(connection)
    try:
        worker = Worker([QUEUE], connection=connection, serializer=JSONSerializer)
        return worker.work(with_scheduler=True, burst=burst)
    finally:
        if stop is not None:
            stop.set()


def main(argv: list[str] | None = None) -> int:
    from workers.context import resources

    parser = argparse.ArgumentParser(prog="python -m workers.runner")
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--no-cron", action="store_true", help="don't run the cron scheduler")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    _settings, _engine, connection, _lock = resources()
    run_worker(connection, burst=args.burst, cron=not args.no_cron)
    return 0


if __name__ == "__main__":
    sys.exit(main())
