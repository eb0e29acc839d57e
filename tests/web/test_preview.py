"""Previews: before an exposure or a status-change batch runs, how many people it would
change, keep and not find — the job's own rule, on today's statuses, with nothing written."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from models.idnumber import make_id_number
from models.tables import Batch, Notice, StatusChange
from tests.conftest import ADMIN
from tests.workers.helpers import change, checkin_at, job, submit

WINDOW = {"start": "2026-11-20T10:00:00+08:00", "end": "2026-11-20T12:00:00+08:00"}


def _rows(engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t.__table__)).scalar_one()
                     for t in (Batch, StatusChange, Notice))


def test_exposure_preview_counts_what_the_job_then_does(client, people, run_jobs,
                                                        venue_with_logbook):
    _owner, venue, logbook = venue_with_logbook
    engine = client.app.state.engine
    red, popup, green, yellow = (people.make("红"), people.make("弹"), people.make("绿"),
                                 people.make("黄"))
    submit(client, "/api/admin/status-changes", {"changes": [
        change(red, "red"), change(popup, "popup", popup_kind="travel"),
        change(yellow, "yellow")]})
    run_jobs()
    at = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
    for person in (red, popup, green, yellow):
        checkin_at(engine, person, logbook, at)
    checkin_at(engine, green, logbook, at + timedelta(minutes=5))  # counted once
    body = {"venue_id": venue["id"], **WINDOW, "status": "yellow", "reason": "场所暴露"}
    before = _rows(engine)
    r = client.post("/api/admin/exposures/preview", headers=ADMIN, json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"total": 4, "changed": 1, "kept": 3, "not_found": 0,
                        "unregistered": 0}
    assert _rows(engine) == before  # nothing written: no batch, no change, no notice
    assert client.get("/api/me", headers=green["headers"]).json()["status"] == "green"
    red_preview = client.post("/api/admin/exposures/preview", headers=ADMIN,
                              json={**body, "status": "red"}).json()
    assert (red_preview["changed"], red_preview["kept"]) == (3, 1)
    # The job does what the preview said.
    queued = submit(client, "/api/admin/exposures", body)
    run_jobs()
    result = job(client, queued["job_id"])["result"]
    assert (result["changed"], result["kept"], result["not_found"]) == (1, 3, 0)


def test_status_change_preview(client, people, run_jobs):
    engine = client.app.state.engine
    a, b = people.make("甲"), people.make("乙")
    submit(client, "/api/admin/status-changes", {"changes": [change(b, "red")]})
    run_jobs()
    stranger = make_id_number("310101", date(1990, 1, 2), 977)
    rows = [change(a, "yellow"),
            change(b, "yellow"),  # a lowering: explicit changes may lower
            {"id_number": stranger, "status": "red", "reason": "x"},
            {"id_number": "110101198503070000", "status": "red", "reason": "x"},
            change(a, "red")]  # a repeat: the first row applies
    before = _rows(engine)
    r = client.post("/api/admin/status-changes/preview", headers=ADMIN,
                    json={"changes": rows})
    assert r.status_code == 200, r.text
    assert r.json() == {"total": 5, "changed": 2, "kept": 0, "not_found": 1, "invalid": 2}
    assert _rows(engine) == before
    same = client.post("/api/admin/status-changes/preview", headers=ADMIN,
                       json={"changes": [change(b, "red")]}).json()
    assert (same["changed"], same["kept"]) == (0, 1)


def test_preview_requests_are_checked_like_the_real_ones(client, people,
                                                         venue_with_logbook):
    _owner, venue, _logbook = venue_with_logbook
    for path, body, status, code in [
        ("/api/admin/status-changes/preview", {"changes": []}, 422, "validation_error"),
        ("/api/admin/status-changes/preview", {"changes": "x"}, 422, "validation_error"),
        ("/api/admin/exposures/preview", {"venue_id": 99999, **WINDOW, "status": "yellow",
                                          "reason": "x"}, 404, "not_found"),
        ("/api/admin/exposures/preview", {"venue_id": venue["id"], **WINDOW,
                                          "status": "blue", "reason": "x"}, 422,
         "validation_error"),
    ]:
        r = client.post(path, headers=ADMIN, json=body)
        assert (r.status_code, r.json()["error"]) == (status, code), (path, body)
    citizen = people.make()
    r = client.post("/api/admin/exposures/preview", headers=citizen["headers"],
                    json={"venue_id": venue["id"], **WINDOW, "status": "yellow",
                          "reason": "x"})
    assert r.status_code == 403
