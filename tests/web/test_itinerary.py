"""The travel popup is cleared by the itinerary platform's signed callback, never by the
citizen (../shared/CONTRACT.md "Additions"): signatures good, wrong, stale, replayed and
missing; passed and failed; other statuses untouched; the citizen only starts a check."""

from __future__ import annotations

import time

import orjson
import pytest

from models.itinerary import TOLERANCE, signature, verify_signature
from tests.conftest import ADMIN

CALLBACK = "/api/itinerary/callback"


def _change(client, run_jobs, person, status, popup_kind=None, reason="行程涉及中高风险地区"):
    row = {"id_number": person["id_number"], "status": status, "reason": reason}
    if popup_kind:
        row["popup_kind"] = popup_kind
    assert client.post("/api/admin/status-changes", headers=ADMIN,
                       json={"changes": [row]}).status_code == 202
    run_jobs()


def _body(person, result="passed", reference="XC-2026-0001") -> bytes:
    return orjson.dumps({"id_number": person["id_number"], "result": result,
                         "reference": reference, "at": "2026-12-06T19:00:00+08:00"})


def _post(client, body: bytes, *, t: int | None = None, secret: str | None = None,
          header: str | None = None):
    secret = secret or client.app.state.settings.itinerary_secret
    if header is None:
        header = signature(secret, body, int(time.time()) if t is None else t)
    headers = {"Content-Type": "application/json"}
    if header:
        headers["X-Scanbook-Signature"] = header
    return client.post(CALLBACK, content=body, headers=headers)


def _card(client, person) -> dict:
    return client.get("/api/me", headers=person["headers"]).json()


@pytest.fixture
def traveller(client, people, run_jobs):
    person = people.make("赵六")
    _change(client, run_jobs, person, "popup", "travel")
    return person


def test_signature_rules():
    body, secret, now = b'{"a":1}', "s" * 40, 1_800_000_000
    verify_signature(signature(secret, body, now), body, secret, now=now + 300)
    verify_signature(f"t={now},v1=00ff,{signature(secret, body, now).split(',')[1]}",
                     body, secret, now=now)  # one of several v1 values matches
    bad = [None, "", "v1=abc", f"t={now}", f"t=x,v1={'0' * 64}",
           signature(secret, body + b" ", now), signature("t" * 40, body, now),
           signature(secret, body, now - 301), signature(secret, body, now + 301)]
    for header in bad:
        with pytest.raises(Exception) as caught:
            verify_signature(header, body, secret, now=now)
        assert caught.value.code == "unauthenticated", header


def test_a_signed_passed_callback_clears_the_travel_popup(client, traveller):
    with client.websocket_connect("/ws/me", headers=traveller["headers"]) as ws:
        assert ws.receive_json()["type"] == "ready"
        r = _post(client, _body(traveller))
        assert r.status_code == 200, r.text
        assert r.json() == {"reference": "XC-2026-0001", "result": "passed", "changed": True}
        event = ws.receive_json()
        assert (event["type"], event["status"], event["popup_kind"]) == ("status", "green",
                                                                         None)
        assert "行程核验通过" in event["reason"]
    card = _card(client, traveller)
    assert (card["status"], card["popup_kind"]) == ("green", None)
    assert card["itinerary"]["state"] == "passed"


@pytest.mark.parametrize("case", ["missing", "wrong_secret", "tampered", "stale", "future",
                                  "garbage"])
def test_unsigned_or_badly_signed_callbacks_are_refused(client, traveller, case):
    body = _body(traveller)
    now = int(time.time())
    r = {
        "missing": lambda: _post(client, body, header=""),
        "wrong_secret": lambda: _post(client, body, secret="not-the-platform-" + "x" * 30),
        "tampered": lambda: client.post(CALLBACK, content=_body(traveller, reference="X2"),
                                        headers={"X-Scanbook-Signature": signature(
                                            client.app.state.settings.itinerary_secret,
                                            body, now)}),
        "stale": lambda: _post(client, body, t=now - 301),
        # The server reads its clock after this test did (int() drops up to a second), so a
        # stamp 301 s ahead could arrive less than 300 s ahead of it; the exact boundary is
        # test_signature_rules' (one `now` for both sides).
        "future": lambda: _post(client, body, t=now + TOLERANCE + 60),
        "garbage": lambda: _post(client, body, header="t=1,v1=zz,,=,"),
    }[case]()
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated", r.text
    assert r.json()["message"]
    assert _card(client, traveller)["status"] == "popup"


def test_a_replayed_reference_is_refused(client, people, run_jobs, traveller):
    body = _body(traveller, result="failed", reference="XC-REPLAY")
    assert _post(client, body).status_code == 200
    # The same callback again, freshly signed: the reference was used.
    r = _post(client, body, t=int(time.time()) - 5)
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
    # And so is a "passed" for another citizen under the same reference.
    other = people.make("孙七")
    _change(client, run_jobs, other, "popup", "travel")
    r = _post(client, _body(other, reference="XC-REPLAY"))
    assert r.status_code == 401
    assert _card(client, other)["status"] == "popup"


def test_failed_leaves_the_popup_and_other_statuses_are_never_touched(client, people,
                                                                      run_jobs, traveller):
    r = _post(client, _body(traveller, result="failed", reference="F-1"))
    assert r.status_code == 200 and r.json()["changed"] is False
    card = _card(client, traveller)
    assert (card["status"], card["popup_kind"]) == ("popup", "travel")
    assert card["itinerary"]["state"] == "failed"
    states = {"red": (None, "red"), "yellow": (None, "yellow"), "risk": ("risk_area", "popup"),
              "green": (None, "green")}
    for n, (key, (kind, status)) in enumerate(states.items()):
        person = people.make(f"某{key}")
        if status != "green":
            _change(client, run_jobs, person, status, kind)
        r = _post(client, _body(person, reference=f"P-{n}"))
        assert r.status_code == 200 and r.json()["changed"] is False, key
        card = _card(client, person)
        assert (card["status"], card["popup_kind"]) == (status, kind), key


def test_bad_bodies_under_a_good_signature(client, traveller):
    for body, code in [(b"not json", "validation_error"),
                       (b"[]", "validation_error"),
                       (orjson.dumps({"id_number": traveller["id_number"], "result": "maybe",
                                      "reference": "R", "at": "2026-12-06T19:00:00+08:00"}),
                        "validation_error"),
                       (orjson.dumps({"id_number": "110101198503070000", "result": "passed",
                                      "reference": "R", "at": "2026-12-06T19:00:00+08:00"}),
                        "invalid_id_number"),
                       (orjson.dumps({"id_number": traveller["id_number"], "result": "passed",
                                      "reference": "", "at": "2026-12-06T19:00:00+08:00"}),
                        "validation_error"),
                       (orjson.dumps({"id_number": traveller["id_number"], "result": "passed",
                                      "reference": "R", "at": "soon"}), "validation_error")]:
        r = _post(client, body)
        assert (r.status_code, r.json()["error"]) == (422, code), body
    from datetime import date

    from models.idnumber import make_id_number

    nobody = {"id_number": make_id_number("310101", date(1990, 1, 2), 977)}
    r = _post(client, _body(nobody, reference="N-1"))
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert _card(client, traveller)["status"] == "popup"


def test_a_citizen_only_starts_a_verification(client, people, run_jobs, traveller):
    me = people.make("周八")
    r = client.post("/api/me/itinerary-verification", headers=me["headers"])
    assert r.status_code == 409 and r.json()["error"] == "conflict"  # no travel popup
    # What cleared the popup before this fix: it now only starts a check.
    r = client.post("/api/me/itinerary-verification", headers=traveller["headers"],
                    json={"result": "passed", "reference": "anything"})
    assert r.status_code == 202, r.text
    check = r.json()
    assert check["state"] == "pending" and check["finished_at"] is None
    assert check["url"] == client.app.state.settings.itinerary_url
    again = client.post("/api/me/itinerary-verification", headers=traveller["headers"]).json()
    assert again["id"] == check["id"]  # the same pending check
    card = _card(client, traveller)
    assert (card["status"], card["popup_kind"]) == ("popup", "travel")
    assert card["itinerary"]["state"] == "pending"
    # A citizen's own bearer token does not sign a callback.
    r = client.post(CALLBACK, headers=traveller["headers"], content=_body(traveller))
    assert r.status_code == 401
    assert _card(client, traveller)["status"] == "popup"
    # The platform's callback finishes the pending check.
    assert _post(client, _body(traveller, reference="XC-9")).status_code == 200
    card = _card(client, traveller)
    assert card["status"] == "green"
    assert (card["itinerary"]["id"], card["itinerary"]["state"]) == (check["id"], "passed")
    assert card["itinerary"]["finished_at"]
    r = client.post("/api/me/itinerary-verification", headers=ADMIN)
    assert r.status_code == 403


def test_the_development_stand_in_end_to_end(engine, run_jobs):
    """`scanbook itinerary-sim` (another process, the secret from the shared data dir) signs
    a callback and posts it to a real server: the citizen who pressed 继续 turns green and
    hears it on /ws/me; the same reference again is refused."""
    import subprocess
    import sys
    from datetime import date

    import httpx2 as httpx
    from websockets.sync.client import connect

    from models.idnumber import make_id_number
    from tests.servers import ROOT, running_server

    id_number = make_id_number("110101", date(1988, 8, 8), 41)

    def sim(base: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "web.cli", "itinerary-sim", "--id-number",
                               id_number, "--url", base, *extra], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)

    with running_server() as server, httpx.Client(base_url=server.url, timeout=10) as http:
        r = http.post("/api/admin/citizens", headers=ADMIN,
                      json={"name": "吴九", "id_number": id_number})
        me = {"Authorization": "Bearer " + r.json()["token"]}
        http.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
            {"id_number": id_number, "status": "popup", "popup_kind": "travel",
             "reason": "行程涉及中高风险地区"}]})
        run_jobs()
        assert http.post("/api/me/itinerary-verification", headers=me).status_code == 202
        ws_url = server.url.replace("http://", "ws://") + "/ws/me"
        with connect(ws_url, additional_headers=me, open_timeout=10) as ws:
            assert orjson.loads(ws.recv(timeout=10))["type"] == "ready"
            done = sim(server.url, "--reference", "SIM-E2E-1")
            assert done.returncode == 0, done.stderr
            assert done.stdout.startswith("200 ") and '"changed":true' in done.stdout
            event = orjson.loads(ws.recv(timeout=10))
            assert (event["type"], event["status"]) == ("status", "green")
        card = http.get("/api/me", headers=me).json()
        assert card["status"] == "green" and card["itinerary"]["state"] == "passed"
        again = sim(server.url, "--reference", "SIM-E2E-1")
        assert again.returncode == 1 and again.stdout.startswith("401 ")
