"""A job that dies after its first chunk, then runs again: nothing changes twice and no
citizen is notified twice (in-process fault; tests/workers/test_crash.py kills a real worker)."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN
from tests.workers.helpers import change, counts, job, submit


def test_rerun_after_failure_mid_batch(client, people, run_jobs, redis_client, monkeypatch):
    import workers.status
    from workers.queues import enqueue

    monkeypatch.setattr(workers.status, "CHUNK", 2)
    crowd = [people.make(f"居民{i}") for i in range(5)]
    calls = {"n": 0}
    real_progress = workers.status._progress

    def dies_after_first_chunk(done, total):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("worker died")  # after the first chunk committed and published
        real_progress(done, total)

    monkeypatch.setattr(workers.status, "_progress", dies_after_first_chunk)
    first = crowd[0]
    with client.websocket_connect("/ws/me", headers=first["headers"]) as ws:
        assert ws.receive_json()["type"] == "ready"
        queued = submit(client, "/api/admin/status-changes",
                        {"changes": [change(p, "yellow") for p in crowd]})
        run_jobs()  # fails after chunk 1; RQ schedules a retry
        engine = client.app.state.engine
        assert counts(engine, queued["batch_id"]) == (2, 2)
        event = ws.receive_json()
        assert (event["type"], event["status"]) == ("status", "yellow")

        # re-run the same batch (as RQ's retry or a re-queue would)
        enqueue(redis_client, "workers.status.apply_status_changes", queued["batch_id"])
        run_jobs()
        assert counts(engine, queued["batch_id"]) == (5, 5)
        r = client.post("/api/admin/notices", headers=ADMIN, json={"text": "核酸检测通知"})
        assert r.status_code == 201
        nxt = ws.receive_json()  # the re-published status notice was dropped, not shown again
        assert (nxt["type"], nxt["text"]) == ("notice", "核酸检测通知")

    states = [client.get("/api/me", headers=p["headers"]).json()["status"] for p in crowd]
    assert states == ["yellow"] * 5
    for person in crowd:
        items = client.get("/api/me/notices", headers=person["headers"]).json()["items"]
        assert [i["type"] for i in items].count("status") == 1


@pytest.mark.parametrize("runs", [2, 3])
def test_running_a_finished_batch_again_is_a_no_op(client, people, run_jobs, redis_client, runs):
    from workers.queues import enqueue

    crowd = [people.make(f"居民{i}") for i in range(3)]
    queued = submit(client, "/api/admin/status-changes",
                    {"changes": [change(p, "red") for p in crowd]})
    run_jobs()
    for _ in range(runs - 1):
        again = enqueue(redis_client, "workers.status.apply_status_changes", queued["batch_id"])
        run_jobs()
        result = job(client, again.id)["result"]
        assert (result["applied"], result["applied_this_run"], result["skipped"]) == (3, 0, 3)
    assert counts(client.app.state.engine) == (3, 3)
