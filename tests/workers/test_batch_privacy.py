"""`batch` holds no ID number in clear: an official's request is stored encrypted (one AES-GCM
blob), and per-row errors in the job's result carry the row index and the masked number."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from models.crypto import decrypt_json
from models.idnumber import make_id_number
from models.masking import mask_id_number
from models.tables import Batch
from tests.conftest import ADMIN
from tests.workers.helpers import change, checkin_at, job, submit


def _forms(number: str) -> list[bytes]:
    """The number, most of it, its birth date and sequence, and the number in base64."""
    return [number.encode(), number[:17].encode(), number[6:17].encode(),
            base64.b64encode(number.encode())]


def test_batch_rows_hold_no_id_number_in_clear(client, people, run_jobs, venue_with_logbook):
    engine = client.app.state.engine
    _owner, venue, book = venue_with_logbook
    a, b = people.make("张三"), people.make("李四")
    stranger = make_id_number("310101", datetime(1990, 1, 2).date(), 977)  # nobody has it
    bad_check = a["id_number"][:-1] + ("0" if a["id_number"][-1] != "0" else "1")
    rows = [
        change(a, "yellow"),
        {"id_number": stranger, "status": "red", "reason": "x"},  # unknown
        {"id_number": bad_check, "status": "red", "reason": "x"},  # malformed
        {"id_number": b["id_number"], "status": "purple", "reason": "x"},  # well-formed, bad row
        change(a, "red"),  # a repeat of row 0
        {"id_number": "12345", "status": "red", "reason": "x"},  # short garbage
    ]
    queued = submit(client, "/api/admin/status-changes", {"changes": rows})
    when = datetime.now(UTC) - timedelta(minutes=5)
    checkin_at(engine, b, book, when)
    exposure = submit(client, "/api/admin/exposures", {
        "venue_id": venue["id"], "start": (when - timedelta(minutes=1)).isoformat(),
        "end": (when + timedelta(minutes=1)).isoformat(), "status": "yellow",
        "reason": "场所暴露 / venue exposure"})
    run_jobs()

    # the official still gets every bad row by index, with the number masked
    state = job(client, queued["job_id"])
    assert state["state"] == "finished", state
    errors = {e["row"]: e for e in state["result"]["errors"]}
    assert sorted(errors) == [1, 2, 3, 4, 5]
    assert (errors[1]["error"], errors[1]["id_number"]) == ("not_found", mask_id_number(stranger))
    assert errors[2]["error"] == "invalid_id_number"
    assert errors[2]["id_number"] == bad_check[:2] + "*" * 16  # malformed: prefix, length
    assert errors[3]["id_number"] == mask_id_number(b["id_number"])
    assert (errors[4]["error"], errors[4]["id_number"]) == ("conflict",
                                                            mask_id_number(a["id_number"]))
    assert errors[5]["id_number"] == "*****"
    exposed = job(client, exposure["job_id"])
    assert exposed["state"] == "finished" and exposed["result"]["applied"] == 1, exposed
    # ...from the batch too, once RQ has let the job go
    client.app.state.redis.flushdb()
    again = job(client, queued["job_id"])
    assert again["batch_id"] == queued["batch_id"]  # read from the batch row
    assert again["result"]["errors"] == state["result"]["errors"]
    r = client.get(f"/api/admin/batches/{queued['batch_id']}", headers=ADMIN)
    assert r.status_code == 200 and r.json()["result"]["errors"] == state["result"]["errors"]

    with engine.connect() as conn:
        stored = conn.execute(text("SELECT * FROM batch")).all()
        sealed = dict(conn.execute(text("SELECT id, payload_enc FROM batch")).all())
    assert len(stored) == 2
    blobs = [bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
             for row in stored for v in row]
    for number in (a["id_number"], b["id_number"], stranger, bad_check):
        for form in _forms(number):
            assert not [blob for blob in blobs if form in blob], (number, form)
    # the application still reads the requests as they were sent
    assert decrypt_json(sealed[queued["batch_id"]]) == {"changes": rows}
    assert decrypt_json(sealed[exposure["batch_id"]])["venue_id"] == venue["id"]
    from sqlmodel import Session

    with Session(engine) as session:
        assert session.get(Batch, queued["batch_id"]).payload == {"changes": rows}
