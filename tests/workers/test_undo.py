"""Undoing a batch with the real worker: the people it changed go back to what they had
(status, popup kind and reason), only those nobody has changed since; notices on /ws/me;
idempotent; revoked logbooks stay revoked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import ADMIN
from tests.workers.helpers import change, checkin_at, counts, job, submit


def _card(client, person) -> dict:
    return client.get("/api/me", headers=person["headers"]).json()


def _state(client, person) -> tuple:
    card = _card(client, person)
    return card["status"], card["popup_kind"], card["reason"]


def _batch(client, run_jobs, rows: list[dict]) -> dict:
    queued = submit(client, "/api/admin/status-changes", {"changes": rows})
    run_jobs()
    assert job(client, queued["job_id"])["state"] == "finished"
    return queued


def _undo(client, run_jobs, job_id: str) -> tuple[dict, dict]:
    r = client.post(f"/api/admin/jobs/{job_id}/undo", headers=ADMIN)
    assert r.status_code == 202, r.text
    queued = r.json()
    run_jobs()
    state = job(client, queued["job_id"])
    assert state["state"] == "finished", state
    return queued, state["result"]


def test_undo_reverts_the_untouched_and_lists_the_others(client, people, run_jobs):
    a, b, c, d = (people.make("甲一"), people.make("乙二"), people.make("丙三"),
                  people.make("丁四"))
    _batch(client, run_jobs, [change(c, "yellow", "旧原因 / the earlier reason"),
                              change(d, "popup", "行程", popup_kind="travel")])
    mistaken = _batch(client, run_jobs, [change(a, "red"), change(b, "yellow"),
                                         change(c, "red"), change(d, "red")])
    _batch(client, run_jobs, [change(b, "green", "复核无异常 / cleared on review")])
    with client.websocket_connect("/ws/me", headers=a["headers"]) as ws:
        assert ws.receive_json()["type"] == "ready"
        undo, result = _undo(client, run_jobs, mistaken["job_id"])
        event = ws.receive_json()
        assert (event["type"], event["status"]) == ("status", "green")
        assert f"#{mistaken['batch_id']}" in event["reason"]
    assert _state(client, a)[:2] == ("green", None)
    assert _state(client, b) == ("green", None, "复核无异常 / cleared on review")  # left
    assert _state(client, c) == ("yellow", None, "旧原因 / the earlier reason")
    assert _state(client, d) == ("popup", "travel", "行程")
    assert result["undone_batch_id"] == mistaken["batch_id"] == undo["undone_batch_id"]
    assert (result["total"], result["changed"], result["kept"], result["not_found"]) == (
        4, 3, 1, 0)
    by_id = {p["citizen_id"]: p for p in result["people"]}
    assert by_id[b["id"]] == {"row": None, "citizen_id": b["id"], "name": "乙*",
                              "id_number": b["id_masked"], "result": "kept",
                              "before": "green", "after": "green", "note": "changed_since"}
    assert (by_id[c["id"]]["result"], by_id[c["id"]]["before"], by_id[c["id"]]["after"]) == (
        "changed", "red", "yellow")
    # b heard nothing from the undo; c did.
    assert [n["status"] for n in client.get("/api/me/notices", headers=b["headers"])
            .json()["items"]] == ["yellow", "green"]
    assert [n["status"] for n in client.get("/api/me/notices", headers=c["headers"])
            .json()["items"]] == ["yellow", "red", "yellow"]
    batch = client.get(f"/api/admin/batches/{undo['batch_id']}", headers=ADMIN).json()
    assert batch["kind"] == "undo" and batch["result"]["changed"] == 3


def test_an_undo_is_idempotent(client, people, run_jobs, redis_client):
    from workers.queues import enqueue

    a, b = people.make("甲"), people.make("乙")
    mistaken = _batch(client, run_jobs, [change(a, "red"), change(b, "yellow")])
    undo, first = _undo(client, run_jobs, mistaken["job_id"])
    engine = client.app.state.engine
    assert counts(engine, undo["batch_id"]) == (2, 2)
    enqueue(redis_client, "workers.status.undo_batch", undo["batch_id"])  # a re-run
    run_jobs()
    assert counts(engine, undo["batch_id"]) == (2, 2)  # nothing twice, no notice twice
    assert _state(client, a)[0] == _state(client, b)[0] == "green"
    assert len(client.get("/api/me/notices", headers=a["headers"]).json()["items"]) == 2
    with engine.connect() as conn:
        from sqlalchemy import select

        from models.tables import Batch
        stored = conn.execute(select(Batch.__table__.c.result).where(
            Batch.__table__.c.id == undo["batch_id"])).scalar_one()
    assert (stored["changed"], stored["kept"], stored["skipped"]) == (2, 0, 2)
    assert first["changed"] == 2
    # The same batch cannot be undone twice.
    r = client.post(f"/api/admin/jobs/{mistaken['job_id']}/undo", headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"] == "conflict"


def test_undoing_an_exposure_leaves_who_kept_their_status(client, people, run_jobs,
                                                          venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    red, green = people.make("红"), people.make("绿")
    _batch(client, run_jobs, [change(red, "red")])
    at = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
    for visitor in (red, green, owner):
        checkin_at(client.app.state.engine, visitor, logbook, at + timedelta(minutes=1))
    queued = submit(client, "/api/admin/exposures", {
        "venue_id": venue["id"], "start": "2026-11-20T10:00:00+08:00",
        "end": "2026-11-20T11:00:00+08:00", "status": "yellow", "reason": "场所暴露"})
    run_jobs()
    exposure = job(client, queued["job_id"])["result"]
    assert exposure["changed"] == 2 and exposure["revoked_logbooks"] == 1  # owner's logbook
    _undo_queued, result = _undo(client, run_jobs, queued["job_id"])
    assert (result["total"], result["changed"], result["kept"]) == (2, 2, 0)
    assert _state(client, red)[0] == "red"  # the exposure never touched them
    assert _state(client, green)[0] == _state(client, owner)[0] == "green"
    # The logbook the exposure revoked stays revoked (docs/status-engine.md).
    book = client.get(f"/api/logbooks/{logbook['id']}", headers=owner["headers"]).json()
    assert book["state"] == "revoked"


def test_undo_requests_that_cannot_be_done(client, people, run_jobs):
    a = people.make()
    r = client.post("/api/admin/jobs/no-such-job/undo", headers=ADMIN)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    waiting = submit(client, "/api/admin/status-changes", {"changes": [change(a, "red")]})
    r = client.post(f"/api/admin/jobs/{waiting['job_id']}/undo", headers=ADMIN)
    assert r.status_code == 409  # not finished yet
    run_jobs()
    violation = submit(client, "/api/admin/violations", {"citizen_id": a["id"], "reason": "x"})
    run_jobs()
    r = client.post(f"/api/admin/jobs/{violation['job_id']}/undo", headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    r = client.post(f"/api/admin/jobs/{waiting['job_id']}/undo", headers=a["headers"])
    assert r.status_code == 403
    r = client.post(f"/api/admin/jobs/{waiting['job_id']}/undo")
    assert r.status_code == 401
    undo = client.post(f"/api/admin/jobs/{waiting['job_id']}/undo", headers=ADMIN).json()
    run_jobs()
    r = client.post(f"/api/admin/jobs/{undo['job_id']}/undo", headers=ADMIN)
    assert r.status_code == 409  # an undo is not undone (run the batch again instead)
