"""The RQ queue (JSON serializer on both sides: never pickle) and job state for the API."""

from __future__ import annotations

from datetime import timedelta

import redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

QUEUE = "scanbook"
# Transient faults (database or Redis blip) get three more tries; jobs are idempotent.
RETRY = Retry(max=3, interval=[1, 5, 15])
JOB_TIMEOUT = 30 * 60


def queue(connection: redis.Redis) -> Queue:
    return Queue(QUEUE, connection=connection, serializer=JSONSerializer,
                 default_timeout=JOB_TIMEOUT)


def enqueue(connection: redis.Redis, func: str, *args: object, at_front: bool = False) -> Job:
    """Enqueue a job by its dotted path (jobs take ids, never objects). `at_front`: a small,
    urgent job (a registrar's revocation, a violation) goes before queued bulk work."""
    return queue(connection).enqueue(func, *args, retry=RETRY, result_ttl=7 * 86400,
                                     failure_ttl=7 * 86400, at_front=at_front)


def enqueue_in(connection: redis.Redis, seconds: int, func: str, *args: object) -> Job:
    """Enqueue a job to run in `seconds` (the worker's scheduler moves it to the queue)."""
    return queue(connection).enqueue_in(timedelta(seconds=seconds), func, *args, retry=RETRY,
                                        result_ttl=86400, failure_ttl=7 * 86400)


_STATES = {"queued": "queued", "deferred": "queued", "scheduled": "queued",
           "started": "started", "finished": "finished", "failed": "failed",
           "stopped": "failed", "canceled": "failed"}


def job_state(connection: redis.Redis, job_id: str) -> dict | None:
    try:
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    except (NoSuchJobError, ValueError):  # ValueError: an id RQ refuses names no job
        return None
    status = job.get_status(refresh=True)
    raw = str(status.value if hasattr(status, "value") else status)
    state = _STATES.get(raw, "queued")
    out: dict = {"id": job.id, "state": state, "result": None,
                 "enqueued_at": job.enqueued_at.isoformat() if job.enqueued_at else None,
                 "ended_at": job.ended_at.isoformat() if job.ended_at else None}
    if state == "finished":
        out["result"] = job.return_value()
    elif state == "failed":
        exc = job.exc_info or ""
        out["error"] = exc.strip().splitlines()[-1] if exc.strip() else raw
        out["retries_left"] = job.retries_left
    elif job.meta.get("progress") is not None:
        out["progress"] = job.meta["progress"]
    return out
