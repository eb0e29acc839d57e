"""Exposures: everyone whose stay at the venue overlaps the window, inclusive at both ends at
the precision of the timestamps given (a stay is [arrival, departure); an arrival inside the
window always counts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.stays import checkout_citizen
from tests.conftest import ADMIN
from tests.workers.helpers import checkin_at, job, submit

START = datetime(2026, 11, 20, 2, 0, 0, tzinfo=UTC)  # 10:00:00 +08:00
END = datetime(2026, 11, 20, 4, 0, 0, tzinfo=UTC)  # 12:00:00 +08:00


def leave(engine, person: dict, checkin_id: int, when: datetime) -> None:
    """The visitor checks out at `when` (the real check-out code, with now = when)."""
    with engine.connect() as conn:
        answer, _events = checkout_citizen(conn, citizen_id=person["id"],
                                           checkin_id=checkin_id, now=when)
        conn.commit()
    assert answer["checkin_id"] == checkin_id


def visit(engine, person: dict, logbook: dict, at: datetime, left: datetime | None) -> int:
    checkin_id = checkin_at(engine, person, logbook, at)
    if left is not None:
        leave(engine, person, checkin_id, left)
    return checkin_id


def _status(client, person) -> str:
    return client.get("/api/me", headers=person["headers"]).json()["status"]


def _expose(client, run_jobs, venue_id, start: str, end: str, **extra) -> dict:
    queued = submit(client, "/api/admin/exposures", {
        "venue_id": venue_id, "start": start, "end": end, "status": "yellow",
        "reason": "场所暴露 / venue exposure", **extra})
    run_jobs()
    state = job(client, queued["job_id"])
    assert state["state"] == "finished", state
    return state["result"]


def test_window_boundaries_at_second_precision(client, people, run_jobs, venue_with_logbook):
    _owner, venue, logbook = venue_with_logbook
    engine = client.app.state.engine
    at = {
        "before_start": START - timedelta(microseconds=1),
        "at_start": START,
        "inside": START + timedelta(minutes=30),
        "at_end": END,
        "end_last_micro": END + timedelta(microseconds=999_999),
        "after_end": END + timedelta(seconds=1),
    }
    who = {key: people.make(f"访客{key}") for key in at}
    for key, when in at.items():  # each leaves the moment they arrive: arrivals alone count
        visit(engine, who[key], logbook, when, when)
    twice = who["inside"]
    visit(engine, twice, logbook, START + timedelta(minutes=45), None)  # counted once

    result = _expose(client, run_jobs, venue["id"], "2026-11-20T10:00:00+08:00",
                     "2026-11-20T12:00:00+08:00")
    assert result["total"] == 4 and result["applied"] == 4
    inside = {"at_start", "inside", "at_end", "end_last_micro"}
    for key, person in who.items():
        assert _status(client, person) == ("yellow" if key in inside else "green"), key


def test_window_at_minute_and_millisecond_precision(client, people, run_jobs,
                                                    venue_with_logbook):
    _owner, venue, logbook = venue_with_logbook
    engine = client.app.state.engine
    in_minute, after_minute = people.make("甲"), people.make("乙")
    for person, when in ((in_minute, END + timedelta(seconds=59, microseconds=999_999)),
                         (after_minute, END + timedelta(minutes=1))):
        visit(engine, person, logbook, when, when)
    result = _expose(client, run_jobs, venue["id"], "2026-11-20T10:00+08:00",
                     "2026-11-20T12:00+08:00")
    assert result["total"] == 1
    assert (_status(client, in_minute), _status(client, after_minute)) == ("yellow", "green")

    in_milli, after_milli = people.make("丙"), people.make("丁")
    base = END + timedelta(hours=1)  # 13:00:00.250 +08:00
    for person, when in ((in_milli, base + timedelta(milliseconds=250, microseconds=999)),
                         (after_milli, base + timedelta(milliseconds=251))):
        visit(engine, person, logbook, when, when)
    result = _expose(client, run_jobs, venue["id"], "2026-11-20T05:00:00.000Z",
                     "2026-11-20T13:00:00.250+08:00")
    assert result["total"] == 1  # 13:00:00.000 to 13:00:00.250 inclusive, in milliseconds
    assert (_status(client, in_milli), _status(client, after_milli)) == ("yellow", "green")


def test_stays_that_overlap_the_window(client, people, run_jobs, venue_with_logbook):
    """The window's edges for stays, not arrivals (the venue's limit: office, 600 minutes)."""
    _owner, venue, logbook = venue_with_logbook
    assert venue["max_stay_minutes"] == 600
    engine = client.app.state.engine
    limit = timedelta(minutes=600)
    stays = {  # (arrival, departure or None while inside), exposed?
        "arrived_before_left_inside": (START - timedelta(hours=1), START + timedelta(minutes=5),
                                       True),
        "arrived_before_still_inside": (START - timedelta(hours=1), None, True),
        "arrived_before_left_after_end": (START - timedelta(hours=1),
                                          END + timedelta(hours=1), True),
        "left_exactly_at_start": (START - timedelta(hours=1), START, False),
        "left_a_microsecond_after_start": (START - timedelta(hours=1),
                                           START + timedelta(microseconds=1), True),
        "arrived_exactly_at_end": (END, None, True),
        "arrived_a_second_after_end": (END + timedelta(seconds=1), None, False),
        # never left: the stay ended at the venue's limit, exactly at the window's start
        "limit_ended_at_start": (START - limit, None, False),
        "limit_ended_just_inside": (START - limit + timedelta(seconds=1), None, True),
    }
    who = {key: people.make(f"访客{key}") for key in stays}
    for key, (arrived, left, _) in stays.items():
        visit(engine, who[key], logbook, arrived, left)
    result = _expose(client, run_jobs, venue["id"], "2026-11-20T10:00:00+08:00",
                     "2026-11-20T12:00:00+08:00")
    exposed = {key for key, (_, _, hit) in stays.items() if hit}
    assert result["total"] == len(exposed)
    for key, person in who.items():
        assert _status(client, person) == ("yellow" if key in exposed else "green"), key


def test_a_check_in_elsewhere_ends_the_stay_before_the_window(client, people, run_jobs,
                                                               venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    r = client.post("/api/venues", headers=owner["headers"], json={
        "name": "隔壁", "address": "x", "district": "朝阳区", "category": "shop"})
    other_book = client.post(f"/api/venues/{r.json()['id']}/logbooks",
                             headers=owner["headers"], json={"label": "门"}).json()
    engine = client.app.state.engine
    moved_on, stayed = people.make("走了"), people.make("没走")
    for person in (moved_on, stayed):
        checkin_at(engine, person, logbook, START - timedelta(hours=2))
    checkin_at(engine, moved_on, other_book, START - timedelta(minutes=10))
    result = _expose(client, run_jobs, venue["id"], "2026-11-20T10:00:00+08:00",
                     "2026-11-20T12:00:00+08:00")
    assert result["total"] == 1
    assert (_status(client, moved_on), _status(client, stayed)) == ("green", "yellow")


def test_other_venues_and_popup_exposure(client, people, run_jobs, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    r = client.post("/api/venues", headers=owner["headers"], json={
        "name": "别处", "address": "x", "district": "海淀区", "category": "shop"})
    other_book = client.post(f"/api/venues/{r.json()['id']}/logbooks",
                             headers=owner["headers"], json={"label": "门"}).json()
    engine = client.app.state.engine
    here, there = people.make("此处"), people.make("别处")
    checkin_at(engine, here, logbook, START + timedelta(minutes=1))
    checkin_at(engine, there, other_book, START + timedelta(minutes=1))
    result = _expose(client, run_jobs, venue["id"], "2026-11-20T10:00:00+08:00",
                     "2026-11-20T10:05:00+08:00", status="popup", popup_kind="risk_area")
    assert result["total"] == 1
    card = client.get("/api/me", headers=here["headers"]).json()
    assert (card["status"], card["popup_kind"]) == ("popup", "risk_area")
    assert _status(client, there) == "green"
    notices = client.get("/api/me/notices", headers=here["headers"]).json()["items"]
    assert notices[-1]["reason"] == "场所暴露 / venue exposure"


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"start": "2026-11-20T10:00:00", "end": "2026-11-20T12:00:00+08:00"}, 422,
     "validation_error"),
    ({"start": "2026-11-20T12:00:00+08:00", "end": "2026-11-20T10:00:00+08:00"}, 422,
     "validation_error"),
    ({"start": "yesterday", "end": "2026-11-20T10:00:00+08:00"}, 422, "validation_error"),
    ({"status": "blue"}, 422, "validation_error"),
    ({"reason": ""}, 422, "validation_error"),
    ({"venue_id": 99999}, 404, "not_found"),
    ({"venue_id": "1"}, 422, "validation_error"),
])
def test_exposure_request_validation(client, venue_with_logbook, body, status, code):
    _owner, venue, _logbook = venue_with_logbook
    full = {"venue_id": venue["id"], "start": "2026-11-20T10:00:00+08:00",
            "end": "2026-11-20T12:00:00+08:00", "status": "yellow", "reason": "暴露", **body}
    r = client.post("/api/admin/exposures", headers=ADMIN, json=full)
    assert (r.status_code, r.json()["error"]) == (status, code), r.text


def test_an_exposure_only_raises(client, people, run_jobs, venue_with_logbook):
    """Red keeps red and a risk-area popup keeps its popup under a yellow exposure; green is
    raised. The result says so per person, masked, and counts it."""
    from tests.workers.helpers import change

    _owner, venue, logbook = venue_with_logbook
    engine = client.app.state.engine
    red, popup, green, yellow = (people.make("欧阳娜娜"), people.make("钱二"),
                                 people.make("孙三"), people.make("李四"))
    submit(client, "/api/admin/status-changes", {"changes": [
        change(red, "red"), change(popup, "popup", popup_kind="risk_area"),
        change(yellow, "yellow")]})
    run_jobs()
    for person in (red, popup, green, yellow):
        checkin_at(engine, person, logbook, START + timedelta(minutes=10))

    result = _expose(client, run_jobs, venue["id"], "2026-11-20T10:00:00+08:00",
                     "2026-11-20T12:00:00+08:00")
    assert _status(client, red) == "red"
    card = client.get("/api/me", headers=popup["headers"]).json()
    assert (card["status"], card["popup_kind"]) == ("popup", "risk_area")
    assert _status(client, green) == "yellow" and _status(client, yellow) == "yellow"
    assert (result["changed"], result["kept"], result["not_found"]) == (1, 3, 0)
    # The fields that were there before keep their meaning.
    assert (result["total"], result["applied"], result["unchanged"]) == (4, 1, 1)
    by_id = {p["citizen_id"]: p for p in result["people"]}
    assert by_id[red["id"]] == {"row": None, "citizen_id": red["id"], "name": "欧阳**",
                                "id_number": red["id_masked"], "result": "kept",
                                "before": "red", "after": "red"}
    assert by_id[green["id"]]["result"] == "changed"
    assert (by_id[green["id"]]["before"], by_id[green["id"]]["after"]) == ("green", "yellow")
    assert by_id[yellow["id"]]["result"] == by_id[popup["id"]]["result"] == "kept"
    # Nobody who kept their status was notified of anything new.
    notices = client.get("/api/me/notices", headers=red["headers"]).json()["items"]
    assert [n["status"] for n in notices] == ["red"]
    assert red["id_number"] not in str(result)


def test_a_stricter_exposure_raises_a_popup(client, people, run_jobs, venue_with_logbook):
    from tests.workers.helpers import change

    _owner, venue, logbook = venue_with_logbook
    engine = client.app.state.engine
    travel, risk = people.make("甲"), people.make("乙")
    submit(client, "/api/admin/status-changes", {"changes": [
        change(travel, "popup", popup_kind="travel"),
        change(risk, "popup", popup_kind="risk_area")]})
    run_jobs()
    for person in (travel, risk):
        checkin_at(engine, person, logbook, START + timedelta(minutes=10))
    result = _expose(client, run_jobs, venue["id"], "2026-11-20T10:00:00+08:00",
                     "2026-11-20T12:00:00+08:00", status="popup", popup_kind="risk_area")
    assert (result["changed"], result["kept"]) == (1, 1)
    card = client.get("/api/me", headers=travel["headers"]).json()
    assert (card["status"], card["popup_kind"]) == ("popup", "risk_area")
    result = _expose(client, run_jobs, venue["id"], "2026-11-20T10:00:00+08:00",
                     "2026-11-20T12:00:00+08:00", status="red")
    assert (result["changed"], result["kept"]) == (2, 0)
    assert _status(client, travel) == _status(client, risk) == "red"
