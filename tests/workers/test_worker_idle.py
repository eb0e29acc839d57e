"""A real `scanbook worker` takes a job within a second however long it has been idle.

redis-py's default read timeout is 5 s; RQ's blocking wait for jobs (BLMOVE) lasts minutes.
A worker whose wait ran on a connection with the short timeout timed out every 5 s, and RQ
then backed off for up to a minute: a job queued meanwhile waited that long."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from rq import Worker
from rq.job import Job
from rq.serializers import JSONSerializer

from tests.servers import ROOT
from workers.queues import enqueue, queue

IDLE = 9.0  # past redis-py's 5 s default read timeout
LIMIT = 1.0


def _idle_worker(redis_client, proc, timeout: float = 30) -> Worker:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the worker exited"
        workers = Worker.all(queue=queue(redis_client))
        if workers and workers[0].get_state() == "idle":
            return workers[0]
        time.sleep(0.1)
    raise AssertionError("the worker never started listening")


@pytest.mark.parametrize("start", range(3))  # the fault struck about half of fresh starts
def test_an_idle_worker_takes_a_job_within_a_second(engine, redis_client, tmp_path, start):
    log_path = tmp_path / "worker.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "web.cli", "worker"], cwd=ROOT,
                                env=dict(os.environ), stdout=log, stderr=log)
    try:
        _idle_worker(redis_client, proc)
        time.sleep(IDLE)
        job = enqueue(redis_client, "workers.retention.purge_checkins")
        deadline = time.monotonic() + 30
        while (status := job.get_status(refresh=True)) not in ("finished", "failed"):
            assert time.monotonic() < deadline, f"the job was not taken ({status})"
            time.sleep(0.05)
        job = Job.fetch(job.id, connection=redis_client, serializer=JSONSerializer)
        waited = (job.started_at - job.enqueued_at).total_seconds()
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    log = log_path.read_text(errors="replace")
    # The fault's mark: RQ's blocking wait timed out on the client side ("Timeout reading").
    assert "Timeout" not in log, log
    assert "Listening on scanbook" in log  # the log is the worker's (the check can fail)
    assert waited < LIMIT, f"the job waited {waited:.1f} s in the queue"
