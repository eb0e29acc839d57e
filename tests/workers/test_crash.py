"""A real RQ worker process (forking, as in production) is killed with SIGKILL in the middle
of a status batch; the batch is run again: no citizen changes twice, no notice is stored or
shown twice, and nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from models.tables import Notice, StatusChange
from tests.conftest import ADMIN
from tests.workers.helpers import bulk_citizens, counts, job, submit

ROOT = Path(__file__).resolve().parents[2]
ROWS = 30_000
CHUNK = 250  # many small transactions, so the kill lands mid-batch


def _worker(*args: str) -> subprocess.Popen:
    """`scanbook worker`: the RQ worker, which forks a work horse per job."""
    return subprocess.Popen(
        [sys.executable, "-m", "web.cli", "worker", *args], cwd=ROOT,
        env={**os.environ, "SCANBOOK_STATUS_CHUNK": str(CHUNK)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _descendants(pid: int) -> list[int]:
    """Child processes, recursively (RQ's work horse runs in its own process group)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill9(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and its work horse at once, as a machine crash would."""
    for pid in [proc.pid, *_descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(10)


def _next(feed) -> dict:
    """The next frame that is not a heartbeat."""
    while (frame := feed.receive_json())["type"] == "ping":
        pass
    return frame


def _changed(engine, batch_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(StatusChange.__table__)
                            .where(StatusChange.batch_id == batch_id)).scalar_one()


def test_kill_worker_mid_batch_then_rerun(client, people, redis_client):
    from workers.queues import enqueue

    engine = client.app.state.engine
    watchers = [people.make(f"观察者{i}") for i in range(3)]
    numbers = [w["id_number"] for w in watchers] + bulk_citizens(engine, ROWS - 3)
    rows = [{"id_number": n, "status": "yellow", "reason": "时空伴随"} for n in numbers]

    sockets = [client.websocket_connect("/ws/me", headers=w["headers"]) for w in watchers]
    feeds = [s.__enter__() for s in sockets]
    try:
        for feed in feeds:
            assert feed.receive_json()["type"] == "ready"
        queued = submit(client, "/api/admin/status-changes", {"changes": rows})
        worker = _worker()
        try:
            deadline = time.monotonic() + 60
            while _changed(engine, queued["batch_id"]) < 4 * CHUNK:
                assert worker.poll() is None and time.monotonic() < deadline
                time.sleep(0.005)
        finally:
            _kill9(worker)
        before = _changed(engine, queued["batch_id"])
        assert 0 < before < ROWS, "the kill must land in the middle of the batch"
        time.sleep(0.5)
        assert _changed(engine, queued["batch_id"]) == before  # nothing runs on
        assert counts(engine, queued["batch_id"]) == (before, before)  # chunks are atomic

        # run it again, as a retry or an operator's re-queue would
        rerun = enqueue(redis_client, "workers.status.apply_status_changes", queued["batch_id"])
        burst = _worker("--burst")
        assert burst.wait(120) == 0
        result = job(client, rerun.id)
        assert result["state"] == "finished", result
        result = result["result"]
        assert result["applied"] == ROWS and result["skipped"] == before
        assert result["applied_this_run"] == ROWS - before and result["errors"] == []
        assert counts(engine, queued["batch_id"]) == (ROWS, ROWS)
        with engine.connect() as conn:
            per_citizen = conn.execute(
                select(Notice.citizen_id, func.count()).where(Notice.batch_id == queued["batch_id"])
                .group_by(Notice.citizen_id).having(func.count() > 1)).all()
        assert per_citizen == []

        # each watcher saw its notice exactly once: the next frame is the announcement
        r = client.post("/api/admin/notices", headers=ADMIN, json={"text": "复跑完成"})
        assert r.status_code == 201
        for feed in feeds:
            frames = [_next(feed), _next(feed)]
            assert [(f["type"], f.get("status"), f.get("text")) for f in frames] == [
                ("status", "yellow", None), ("notice", None, "复跑完成")]
    finally:
        for s in sockets:
            s.__exit__(None, None, None)
    for w in watchers:
        items = client.get("/api/me/notices", headers=w["headers"]).json()["items"]
        assert [i["type"] for i in items] == ["status", "notice"]
