"""kill -9 a real `scanbook worker` (and its work horse) in the middle of a big job — an
official's status-change batch, or an exposure (everyone checked in at a venue in a window) —
then start a new worker: the job is handed on at once and finishes; no citizen's status change
or notice is applied twice, and a citizen watching /ws/me sees their notice exactly once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta

import psutil
import pytest
from sqlalchemy import func, insert, select

from models.tables import Checkin, Citizen, Notice, StatusChange, utcnow
from models.timeutil import iso
from realtime.embedded import start_redis
from tests.faults.common import Registrar, make_citizens, make_venue, official
from tests.servers import ROOT, free_port, start_server

CITIZENS = 20_000  # ten chunks of 2,000: the kill lands after the first, well before the last


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


def _checked_in(engine, base_url: str, citizens: list[dict], at: datetime) -> int:
    """A venue where every citizen checked in at `at` (rows written straight away)."""
    owner, *_ = make_citizens(engine, 1, first=CITIZENS, name="场所负责人")
    venue, (book,) = make_venue(base_url, owner, logbooks=1)
    rows = [{"venue_id": venue["id"], "logbook_id": book["id"], "citizen_id": c["id"],
             "helper_id": None, "via": "scan", "status": "green", "popup_kind": None,
             "alert": False, "minor": False, "name_masked": "访*", "id_masked": "1" * 18,
             "at": at} for c in citizens]
    with engine.begin() as conn:
        conn.execute(insert(Checkin.__table__), rows)
    return venue["id"]


def _submit(http, engine, server, kind: str, citizens: list[dict]):
    if kind == "status-changes":
        return http.post("/api/admin/status-changes", json={"changes": [
            {"id_number": c["id_number"], "status": "yellow", "reason": "密接"}
            for c in citizens]})
    at = utcnow() - timedelta(hours=1)
    venue_id = _checked_in(engine, server.url, citizens, at)
    return http.post("/api/admin/exposures", json={
        "venue_id": venue_id, "start": iso(at - timedelta(minutes=5)),
        "end": iso(at + timedelta(minutes=5)), "status": "yellow", "reason": "密接"})


@pytest.mark.parametrize("kind", ["status-changes", "exposure"])
def test_worker_kill_9_mid_job_new_worker_finishes_it_once(engine, tmp_path, kind):
    redis_proc, url = start_redis(tmp_path / "redis", free_port(), persist=False)
    server = start_server(env={"REDIS_URL": url})
    log = open(tmp_path / "workers.log", "ab")  # noqa: SIM115 - closed below
    workers, watchers = [], []
    try:
        citizens = make_citizens(engine, CITIZENS)
        # Three citizens watch their own notices: one early, one in the middle, one late.
        for c in (citizens[0], citizens[CITIZENS // 2], citizens[-1]):
            watchers.append(Registrar([server.ws_url], None, c["headers"], f"me-{c['id']}",
                                      path="/ws/me", kind="status"))
            watchers[-1].start()
        assert all(w.ready.wait(15) for w in watchers)
        with official(server.url) as http:
            r = _submit(http, engine, server, kind, citizens)
            assert r.status_code == 202, r.text
            job_id, batch_id = r.json()["job_id"], r.json()["batch_id"]

            workers.append(_worker(url, log))
            deadline = time.monotonic() + 40
            while not 0 < _changed(engine, batch_id):
                assert time.monotonic() < deadline, "the first worker never got going"
                time.sleep(0.01)
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
        with engine.connect() as conn:
            notice_ids = dict(conn.execute(select(Notice.citizen_id, Notice.id).where(
                Notice.kind == "status", Notice.citizen_id.in_(ids))).all())
        for watcher in watchers:
            mine = notice_ids[int(watcher.name.split("-")[1])]
            assert watcher.wait_for({mine}, timeout=15), watcher.name
            assert watcher.seen == [mine] and not watcher.errors, (watcher.seen, watcher.errors)
    finally:
        for watcher in watchers:
            watcher.stop()
        for proc in workers:
            _kill_all(proc)
        log.close()
        server.stop()
        redis_proc.kill()
        redis_proc.wait()
