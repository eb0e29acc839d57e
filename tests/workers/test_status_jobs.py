"""Status-change batches through the officials' API and a real RQ worker (real Redis)."""

from __future__ import annotations

from models.masking import mask_id_number
from tests.conftest import ADMIN
from tests.workers.helpers import change, counts, job, submit


def _me(client, person) -> dict:
    r = client.get("/api/me", headers=person["headers"])
    assert r.status_code == 200, r.text
    return r.json()


def test_batch_applies_valid_rows_and_reports_every_bad_row(client, people, run_jobs):
    a, b, c = people.make("张三"), people.make("李四"), people.make("王五")
    rows = [
        change(a, "yellow"),
        change(b, "popup", "行程涉及中高风险地区", popup_kind="travel"),
        {"id_number": "110101198503070000", "status": "red", "reason": "x"},  # bad check digit
        {"id_number": "11010119850307999X", "status": "red", "reason": "x"},  # maybe valid, unknown
        {"id_number": c["id_number"], "status": "red"},  # no reason
        {"id_number": c["id_number"], "status": "popup", "reason": "x"},  # popup without kind
        {"id_number": c["id_number"], "status": "purple", "reason": "x"},
        "not an object",
        change(a, "red"),  # a repeat of row 0: row 0 applies
        change(c, "green", reason=""),  # green may go without a reason; c is green already
    ]
    queued = submit(client, "/api/admin/status-changes", {"changes": rows})
    assert set(queued) >= {"job_id", "batch_id"}
    assert job(client, queued["job_id"])["state"] == "queued"
    run_jobs()
    state = job(client, queued["job_id"])
    assert state["state"] == "finished", state
    result = state["result"]
    assert result["total"] == 10 and result["applied"] == 2 and result["unchanged"] == 1
    errors = {e["row"]: e for e in result["errors"]}
    assert sorted(errors) == [2, 3, 4, 5, 6, 7, 8]
    assert errors[2]["error"] == "invalid_id_number"
    assert errors[3]["error"] in ("not_found", "invalid_id_number")
    assert errors[4]["error"] == "validation_error" and errors[5]["error"] == "validation_error"
    assert errors[6]["error"] == "validation_error" and errors[7]["error"] == "validation_error"
    assert errors[8]["error"] == "conflict"
    assert errors[8]["id_number"] == mask_id_number(a["id_number"])  # masked in results
    assert errors[2]["id_number"] == "11****************"  # malformed: prefix and length only
    assert [e["row"] for e in result["errors"]] == sorted(errors)
    card = _me(client, a)
    assert (card["status"], card["popup_kind"], card["reason"]) == ("yellow", None,
                                                                   "密接 / close contact")
    card = _me(client, b)
    assert (card["status"], card["popup_kind"]) == ("popup", "travel")
    assert _me(client, c)["status"] == "green"
    notices = client.get("/api/me/notices", headers=a["headers"]).json()["items"]
    assert [(n["type"], n["status"]) for n in notices] == [("status", "yellow")]
    assert counts(client.app.state.engine, queued["batch_id"]) == (2, 2)


def test_unknown_id_number_is_reported_per_row(client, people, run_jobs):
    from models.idnumber import make_id_number

    known = people.make("张三")
    stranger = make_id_number("310101", __import__("datetime").date(1990, 1, 2), 977)
    queued = submit(client, "/api/admin/status-changes", {"changes": [
        {"id_number": stranger, "status": "red", "reason": "x"}, change(known, "red")]})
    run_jobs()
    result = job(client, queued["job_id"])["result"]
    assert result["applied"] == 1
    assert result["errors"] == [{"row": 0, "id_number": mask_id_number(stranger),
                                 "error": "not_found",
                                 "message": result["errors"][0]["message"]}]


def test_same_status_again_changes_nothing_and_sends_nothing(client, people, run_jobs):
    a = people.make()
    first = submit(client, "/api/admin/status-changes", {"changes": [change(a, "yellow")]})
    run_jobs()
    second = submit(client, "/api/admin/status-changes", {"changes": [change(a, "yellow")]})
    run_jobs()
    assert job(client, first["job_id"])["result"]["applied"] == 1
    result = job(client, second["job_id"])["result"]
    assert (result["applied"], result["unchanged"]) == (0, 1)
    assert len(client.get("/api/me/notices", headers=a["headers"]).json()["items"]) == 1


def test_request_validation(client):
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": []})
    assert r.status_code == 422 and r.json()["error"] == "validation_error"
    r = client.post("/api/admin/status-changes", headers=ADMIN,
                    json={"changes": [{}] * 100_001})
    assert r.status_code == 422
    r = client.post("/api/admin/status-changes", json={"changes": [{}]})
    assert r.status_code == 401
    r = client.get("/api/admin/jobs/nope", headers=ADMIN)
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_failed_job_and_its_error_are_visible(client, redis_client, run_jobs):
    from workers.queues import enqueue

    queued = enqueue(redis_client, "workers.status.apply_status_changes", 987654)
    run_jobs()
    state = job(client, queued.id)
    assert state["state"] == "failed"
    assert "batch 987654 not found" in state["error"]
    assert state["retries_left"] == 0  # a missing batch is permanent: no pointless retries


def test_failing_job_is_retried_with_backoff(client, people, run_jobs, monkeypatch):
    """A transient fault: RQ schedules a retry (the job stays queued, with retries left)."""
    import workers.status

    a = people.make()

    def broken(*args, **kwargs):
        raise ConnectionError("database blip")

    monkeypatch.setattr(workers.status, "apply_changes", broken)
    queued = submit(client, "/api/admin/status-changes", {"changes": [change(a, "red")]})
    run_jobs()
    from rq.job import Job
    from rq.serializers import JSONSerializer

    rq_job = Job.fetch(queued["job_id"], connection=client.app.state.redis,
                       serializer=JSONSerializer)
    assert rq_job.get_status() == "scheduled" and rq_job.retries_left == 2
    assert job(client, queued["job_id"])["state"] == "queued"


def test_batch_endpoint_and_job_fallback(client, people, run_jobs, redis_client):
    a = people.make()
    queued = submit(client, "/api/admin/status-changes", {"changes": [change(a, "red")]})
    run_jobs()
    batch = client.get(f"/api/admin/batches/{queued['batch_id']}", headers=ADMIN).json()
    assert batch["kind"] == "status_changes" and batch["result"]["applied"] == 1
    redis_client.delete(f"rq:job:{queued['job_id']}")  # RQ forgot it (result TTL)
    state = job(client, queued["job_id"])
    assert state["state"] == "finished" and state["result"]["applied"] == 1


def test_small_batches_and_violations_jump_the_queue(client, people, redis_client):
    from workers.queues import queue

    a = people.make()
    bulk = submit(client, "/api/admin/status-changes",
                  {"changes": [change(a, "yellow")] * 1001})  # bulk: queued in order
    small = submit(client, "/api/admin/status-changes", {"changes": [change(a, "red")]})
    violation = submit(client, "/api/admin/violations", {"citizen_id": a["id"], "reason": "x"})
    assert queue(redis_client).job_ids == [violation["job_id"], small["job_id"],
                                           bulk["job_id"]]


def test_an_explicit_change_may_lower_and_lists_every_person(client, people, run_jobs):
    from datetime import date

    from models.idnumber import make_id_number

    a, b = people.make("张三"), people.make("诸葛亮")
    submit(client, "/api/admin/status-changes", {"changes": [change(a, "red"),
                                                             change(b, "yellow")]})
    run_jobs()
    stranger = make_id_number("310101", date(1990, 1, 2), 977)
    queued = submit(client, "/api/admin/status-changes", {"changes": [
        change(a, "yellow", "转居家观察 / moved to home observation"),
        {"id_number": stranger, "status": "red", "reason": "x"},
        change(b, "yellow")]})
    run_jobs()
    result = job(client, queued["job_id"])["result"]
    assert _me(client, a)["status"] == "yellow"  # lowered: red → yellow, explicitly
    assert (result["changed"], result["kept"], result["not_found"]) == (1, 1, 1)
    assert result["people"] == [
        {"row": 0, "citizen_id": a["id"], "name": "张*", "id_number": a["id_masked"],
         "result": "changed", "before": "red", "after": "yellow"},
        {"row": 1, "citizen_id": None, "name": None, "id_number": mask_id_number(stranger),
         "result": "not_found", "before": None, "after": None},
        {"row": 2, "citizen_id": b["id"], "name": "诸葛*", "id_number": b["id_masked"],
         "result": "kept", "before": "yellow", "after": "yellow"}]
    assert result["errors"][0]["error"] == "not_found"  # still reported as a row error


def test_a_long_result_lists_the_exceptions_first(client, people, run_jobs, monkeypatch):
    """Past PEOPLE_LISTED entries the counts stay whole, the kept and not-found people are
    listed before the changed ones, and the result says how many it left out."""
    from datetime import date

    import models.health
    from models.idnumber import make_id_number

    monkeypatch.setattr(models.health, "PEOPLE_LISTED", 3)
    persons = [people.make(f"居民{i}") for i in range(4)]
    submit(client, "/api/admin/status-changes", {"changes": [change(persons[3], "red")]})
    run_jobs()
    stranger = make_id_number("310101", date(1990, 1, 2), 977)
    queued = submit(client, "/api/admin/status-changes", {"changes": [
        *(change(p, "yellow") for p in persons[:3]), change(persons[3], "red"),
        {"id_number": stranger, "status": "red", "reason": "x"}]})
    run_jobs()
    result = job(client, queued["job_id"])["result"]
    assert (result["changed"], result["kept"], result["not_found"]) == (3, 1, 1)
    assert [(p["row"], p["result"]) for p in result["people"]] == [
        (0, "changed"), (3, "kept"), (4, "not_found")]
    assert result["people_omitted"] == 2
