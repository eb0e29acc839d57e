"""Jobs whose worker died (kill -9, the OOM killer, a crashed machine) are handed on when a
worker starts, instead of when RQ would notice: a dead worker's job stays "started" until its
heartbeat lapses (about 90 s) and the next registry cleaning (every 10 min), and the dead
worker's scheduler lock keeps retries and cron jobs waiting for another minute.

A worker counts as dead when its Redis key has expired, or when it ran on this machine and its
process is gone. Its jobs go through RQ's own abandoned-job path (the job's Retry policy, else
the failed registry); jobs are idempotent, so a re-run finishes what the dead one started.
"""

from __future__ import annotations

import logging
import os
import socket

import redis
from rq.scheduler import RQScheduler
from rq.utils import parse_composite_key

from workers.queues import QUEUE, queue

log = logging.getLogger("scanbook.recovery")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child nobody has reaped yet is a zombie: dead all the same
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _process_gone(data: dict[bytes, bytes], *, missing: bool = True) -> bool:
    """A worker or scheduler hash: gone when it ran on this host and its process is dead;
    `missing` is the answer when there is no hash (expired, or not written yet)."""
    if not data:
        return missing
    if data.get(b"hostname", b"").decode() != socket.gethostname():
        return False  # another machine's: only its heartbeat can tell
    try:
        return not _alive(int(data.get(b"pid") or 0))
    except ValueError:
        return False


def requeue_orphans(connection: redis.Redis) -> list[str]:
    """Hand on the jobs of dead workers and free a dead scheduler's lock; the job ids."""
    registry = queue(connection).started_job_registry
    orphans = []
    for raw in connection.zrange(registry.key, 0, -1):
        entry = raw.decode()
        job_id, execution_id = parse_composite_key(entry)
        worker = connection.hget(f"rq:execution:{entry}", "worker_name")
        if worker and not _process_gone(connection.hgetall(f"rq:worker:{worker.decode()}")):
            continue
        connection.zadd(registry.key, {entry: 0}, xx=True)  # its heartbeat is over: now
        orphans.append(job_id)
    lock = RQScheduler.get_locking_key(QUEUE)
    owner = connection.get(lock)
    # A scheduler writes its hash just after taking the lock: no hash, no verdict.
    if owner and _process_gone(connection.hgetall(f"rq:scheduler:{owner.decode()}"),
                               missing=False):
        connection.delete(lock)
        log.warning("freed the scheduler lock of a dead worker")
    if orphans:
        log.warning("handing on %d job(s) of dead workers: %s", len(orphans), orphans)
        registry.cleanup()  # RQ's abandoned-job handling: retry per the job's policy
    return orphans
