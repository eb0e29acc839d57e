"""Scheduled jobs on RQ's cron scheduler (rq.cron): retention, hourly; stay expiry, every
minute.

RQ's CronJob enqueues with the default (pickle) serializer; our workers only speak JSON, so
the jobs here are enqueued through workers.queues (JSON on both sides) instead.

Run it as its own process (`python -m workers.schedule`, e.g. a Procfile `clock:` entry), or
inside a worker process with `start_thread(connection)`.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from rq import cron_job_registry
from rq.cron import CronJob, CronScheduler
from rq.job import Job

from workers.queues import QUEUE, queue
from workers.retention import purge_checkins
from workers.stays import close_expired

log = logging.getLogger("scanbook.schedule")

# Minute 17 of every hour: check-ins leave within an hour of passing the retention limit;
# an odd minute keeps clear of other hourly jobs on a shared Redis.
RETENTION_CRON = "17 * * * *"
# Every minute: a stay past its venue's limit shows its departure within a minute (occupancy
# and check-out do not wait for it: they apply the limit themselves, models/stays.py).
STAYS_CRON = "* * * * *"


class JsonCronJob(CronJob):
    """A cron job enqueued with the JSON serializer."""

    def enqueue(self, connection: redis.Redis) -> Job:
        with connection.pipeline() as pipe:
            job = queue(connection).enqueue(self.func, args=self.args, kwargs=self.kwargs,
                                            **self.job_options, pipeline=pipe)
            assert job.enqueued_at is not None
            pipe.zadd(self.job_history_key, {job.id: job.enqueued_at.timestamp()})
            cron_job_registry.add(self.name, pipe, enqueue_timestamp=job.enqueued_at.timestamp())
            pipe.execute()
        log.info("enqueued %s (%s)", self.name, job.id)
        return job


class Scheduler(CronScheduler):
    def register(self, func, queue_name: str, **options) -> CronJob:  # type: ignore[override]
        job = JsonCronJob(queue_name=queue_name, func=func, **options)
        self._cron_jobs.append(job)  # what CronScheduler.register does with its own CronJob
        return job


def make_scheduler(connection: redis.Redis) -> Scheduler:
    scheduler = Scheduler(connection=connection, name=f"scanbook:{time.time_ns()}")
    scheduler.register(purge_checkins, QUEUE, cron=RETENTION_CRON, job_timeout=3600,
                       result_ttl=7 * 86400, failure_ttl=7 * 86400)
    scheduler.register(close_expired, QUEUE, cron=STAYS_CRON, job_timeout=300,
                       result_ttl=3600, failure_ttl=7 * 86400)
    return scheduler


def run_loop(scheduler: Scheduler, stop: threading.Event) -> None:
    """CronScheduler.start() without its signal handlers (usable off the main thread)."""
    scheduler.register_birth()
    try:
        while not stop.is_set():
            try:
                if scheduler.enqueue_jobs():
                    scheduler.save()
                scheduler.heartbeat()
            except redis.RedisError as exc:  # Redis blip: try again on the next tick
                log.warning("cron tick failed: %s", exc)
            stop.wait(min(scheduler.calculate_sleep_interval(), 30) or 1)
    finally:
        try:
            scheduler.register_death()
        except redis.RedisError:
            pass


def start_thread(connection: redis.Redis) -> tuple[threading.Thread, threading.Event]:
    """Run the cron scheduler in a daemon thread; set the event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=run_loop, args=(make_scheduler(connection), stop),
                              name="scanbook-cron", daemon=True)
    thread.start()
    return thread, stop


def main() -> None:
    from workers.context import resources

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    _settings, _engine, connection, _lock = resources()
    make_scheduler(connection).start()


if __name__ == "__main__":
    main()
