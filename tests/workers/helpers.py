"""Helpers for the status-engine tests: submitting official requests and reading results."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from models.checkins import CheckinRequest, record_checkins
from models.tables import Notice, StatusChange
from tests.conftest import ADMIN


def submit(client, path: str, body: dict) -> dict:
    r = client.post(path, headers=ADMIN, json=body)
    assert r.status_code == 202, r.text
    return r.json()


def job(client, job_id: str) -> dict:
    r = client.get(f"/api/admin/jobs/{job_id}", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def change(person: dict, status: str, reason: str = "密接 / close contact",
           popup_kind: str | None = None) -> dict:
    row = {"id_number": person["id_number"], "status": status, "reason": reason}
    if popup_kind:
        row["popup_kind"] = popup_kind
    return row


def checkin_at(engine, person: dict, logbook: dict, at: datetime) -> int:
    """A check-in at a given time (through the real check-in code, with `now` = at)."""
    with engine.connect() as conn:
        results, _events, _checkouts = record_checkins(
            conn, [CheckinRequest(citizen_id=person["id"], code=logbook["token"])], now=at)
        conn.commit()
    result = results[0]
    assert not isinstance(result, Exception), result
    return result.checkin["id"]


def counts(engine, batch_id: int | None = None) -> tuple[int, int]:
    """(status-change rows, status notices) — of a batch, or of all batches."""
    with engine.connect() as conn:
        sc = select(func.count()).select_from(StatusChange.__table__)
        n = select(func.count()).select_from(Notice.__table__).where(Notice.kind == "status")
        if batch_id is not None:
            sc = sc.where(StatusChange.batch_id == batch_id)
            n = n.where(Notice.batch_id == batch_id)
        return conn.execute(sc).scalar_one(), conn.execute(n).scalar_one()


def bulk_citizens(engine, n: int, *, region: str = "120101") -> list[str]:
    """n citizens written straight into the database (fast); returns their ID numbers."""
    from datetime import date, timedelta

    from sqlalchemy import insert

    from models.idnumber import make_id_number
    from models.tables import Citizen, utcnow

    now = utcnow()
    numbers = [make_id_number(region, date(1960, 1, 1) + timedelta(days=i // 1000), i % 1000)
               for i in range(n)]
    with engine.begin() as conn:
        conn.execute(insert(Citizen), [
            {"name": "批量居民", "id_number": number, "phone": "", "status": "green",
             "popup_kind": None, "reason": "", "status_at": now, "created_at": now}
            for number in numbers])
    return numbers
