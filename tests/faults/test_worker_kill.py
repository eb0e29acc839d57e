"""kill -9 a real `scanbook worker` (and its work horse) in the middle of a big status-change
job, then start a new worker: the job is handed on at once and finishes; no citizen's status
change or notice is applied twice."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import psutil
from sqlalchemy import func, select

from models.tables import Citizen, Notice, StatusChange
from realtime.embedded import start_redis
from tests.faults.common import make_citizens, official
from tests.servers import ROOT, free_port, start_server

CITIZENS = 16_000  # eight chunks of 2,000: the kill lands after the first, well before the last


def _worker(url: str, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "web.cli", "worker"], cwd=ROOT,
                            env={**os.environ, "REDIS_URL": url}, stdout=log, stderr=log)


def _kill_all(proc: subprocess.Popen) -> None:
    """kill -9 the worker, its work horse (RQ forks it into a session of its own) and its
    scheduler: as if the machine had lost them all at once."""
    try:
        family = [proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        family = [proc.pid]
    for pid in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(10)


def _changed(engine, batch_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(StatusChange)
                            .where(StatusChange.batch_id == batch_id)).scalar_one()


def test_worker_kill_9_mid_job_new_worker_finishes_it_once(engine, tmp_path):
    redis_proc, url = start_redis(tmp_path / "redis", free_port(), persist=False)
    server = start_server(env={"REDIS_URL": url})
    log = open(tmp_path / "workers.log", "ab")  # noqa: SIM115 - closed below
    workers = []
    try:
        citizens = make_citizens(engine, CITIZENS)
        with official(server.url) as http:
            r = http.post("/api/admin/status-changes", json={"changes": [
                {"id_number": c["id_number"], "status": "yellow", "reason": "密接"}
                for c in citizens]})
            assert r.status_code == 202, r.text
            job_id, batch_id = r.json()["job_id"], r.json()["batch_id"]

            workers.append(_worker(url, log))
            deadline = time.monotonic() + 40
            while not 0 < _changed(engine, batch_id):
                assert time.monotonic() < deadline, "the first worker never got going"
                time.sleep(0.05)
            _kill_all(workers[0])
            at_kill = _changed(engine, batch_id)
            assert 0 < at_kill < CITIZENS, "the job finished before the kill"
            assert http.get(f"/api/admin/jobs/{job_id}").json()["state"] == "started"

            workers.append(_worker(url, log))
            deadline = time.monotonic() + 45
            while (state := http.get(f"/api/admin/jobs/{job_id}").json())["state"] != "finished":
                assert state["state"] != "failed", state
                assert time.monotonic() < deadline, (state, _changed(engine, batch_id))
                time.sleep(0.2)

        result = state["result"]
        assert result["total"] == CITIZENS and result["applied"] == CITIZENS, result
        assert not result["errors"]
        ids = [c["id"] for c in citizens]
        with engine.connect() as conn:
            changes = conn.execute(select(StatusChange.citizen_id, func.count())
                                   .where(StatusChange.batch_id == batch_id)
                                   .group_by(StatusChange.citizen_id)).all()
            notices = conn.execute(select(Notice.citizen_id, func.count())
                                   .where(Notice.kind == "status")
                                   .group_by(Notice.citizen_id)).all()
            statuses = conn.execute(select(Citizen.status, func.count())
                                    .where(Citizen.id.in_(ids)).group_by(Citizen.status)).all()
        assert len(changes) == CITIZENS and {n for _, n in changes} == {1}
        assert len(notices) == CITIZENS and {n for _, n in notices} == {1}
        assert dict(statuses) == {"yellow": CITIZENS}
    finally:
        for proc in workers:
            _kill_all(proc)
        log.close()
        server.stop()
        redis_proc.kill()
        redis_proc.wait()
