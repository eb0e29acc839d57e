"""Venues, registrars, logbooks, scans, listings, exports: the registrar's side of the API."""

import csv
import io
import re
from datetime import date

import PIL.Image
import pytest
import zxingcpp
from openpyxl import load_workbook

from tests.conftest import ADMIN, add_co_registrar


def _make_yellow(client, run_jobs, id_number, status="yellow", popup_kind=None):
    row = {"id_number": id_number, "status": status, "reason": "流调 trace"}
    if popup_kind:
        row["popup_kind"] = popup_kind
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [row]})
    assert r.status_code == 202, r.text
    run_jobs()
    job = client.get(f"/api/admin/jobs/{r.json()['job_id']}", headers=ADMIN).json()
    assert job["state"] == "finished", job
    return job


def test_only_green_citizens_open_venues_and_logbooks(client, people, run_jobs):
    owner = people.make("王五")
    _make_yellow(client, run_jobs, owner["id_number"])
    r = client.post("/api/venues", headers=owner["headers"], json={
        "name": "超市", "address": "x", "district": "海淀区", "category": "shop"})
    assert r.status_code == 403 and r.json()["error"] == "registrar_not_green"


def test_venue_validation_errors_are_in_contract_format(client, people):
    owner = people.make()
    r = client.post("/api/venues", headers=owner["headers"], json={"name": "x"})
    assert r.status_code == 422
    assert r.json()["error"] == "validation_error" and "address" in r.json()["message"]
    r = client.post("/api/venues", headers=owner["headers"], content=b"{not json")
    assert r.status_code == 422 and r.json()["error"] == "validation_error"
    r = client.post("/api/venues", json={"name": "x"})
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"


def test_co_registrar_must_be_green_and_sees_the_venue(client, people, run_jobs,
                                                       venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    co = people.make("赵六")
    sick = people.make("钱七")
    _make_yellow(client, run_jobs, sick["id_number"])
    # Invited, the sick citizen cannot accept (told to them only); more in
    # tests/web/test_registrar_invitations.py.
    r = client.post(f"/api/venues/{venue['id']}/registrars", headers=owner["headers"],
                    json={"citizen_id": sick["id"]})
    assert r.status_code == 201
    r = client.post(f"/api/invitations/{r.json()['id']}/accept", headers=sick["headers"])
    assert r.status_code == 403 and r.json()["error"] == "registrar_not_green"
    add_co_registrar(client, owner, venue["id"], co)
    r = client.post(f"/api/venues/{venue['id']}/registrars", headers=owner["headers"],
                    json={"citizen_id": co["id"]})
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    # the co-registrar reads the logbooks; a stranger may not
    assert client.get(f"/api/venues/{venue['id']}/logbooks", headers=co["headers"]).json()[
        "items"][0]["id"] == logbook["id"]
    stranger = people.make("孙八")
    r = client.get(f"/api/venues/{venue['id']}/logbooks", headers=stranger["headers"])
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = client.get("/api/venues/999999/logbooks", headers=stranger["headers"])
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_logbook_fields_and_qr_code_decodes_to_scan_url(client, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    for key in ("id", "venue_id", "label", "state", "token", "scan_url", "qr_png", "qr_svg",
                "poster"):
        assert key in logbook
    assert logbook["state"] == "active" and logbook["venue_id"] == venue["id"]
    assert logbook["scan_url"] == f"http://testserver/s/{logbook['token']}"
    assert len(logbook["token"]) >= 22  # 128 random bits
    r = client.get(f"/logbooks/{logbook['id']}/qr.png", headers=owner["headers"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    decoded = zxingcpp.read_barcodes(PIL.Image.open(io.BytesIO(r.content)))
    assert [d.text for d in decoded] == [logbook["scan_url"]]
    svg = client.get(f"/logbooks/{logbook['id']}/qr.svg", headers=owner["headers"])
    assert svg.status_code == 200 and svg.content.startswith(b"<svg")
    assert client.get(f"/logbooks/{logbook['id']}/qr.png").status_code == 401


def test_scan_dedup_masking_and_minor(client, people, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    child = people.make("上官婉儿", born=date(2015, 6, 1))
    r = client.post("/api/scan", headers=child["headers"], json={"code": logbook["token"]})
    assert r.status_code == 201
    body = r.json()
    assert body["logbook"] == {"id": logbook["id"], "label": "东门"}
    assert body["minor"] is True and body["at"].endswith("+08:00")
    again = client.post("/api/scan", headers=child["headers"], json={"code": logbook["token"]})
    assert again.status_code == 200 and again.json()["checkin_id"] == body["checkin_id"]
    items = client.get(f"/api/logbooks/{logbook['id']}/checkins",
                       headers=owner["headers"]).json()["items"]
    assert len(items) == 1
    item = items[0]
    assert item["name"] == "上官**"
    assert item["id_number"] == child["id_number"][:2] + "*" * 14 + child["id_number"][-2:]
    assert item["minor"] is True and item["via"] == "scan"


def test_scan_errors(client, people, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    visitor = people.make()
    r = client.post("/api/scan", headers=visitor["headers"], json={"code": "nope"})
    assert r.status_code == 404 and r.json()["error"] == "unknown_code"
    r = client.post("/api/scan", headers=visitor["headers"], json={})
    assert r.status_code == 422
    r = client.post("/api/scan", json={"code": logbook["token"]})
    assert r.status_code == 401
    r = client.post("/api/scan", headers=ADMIN, json={"code": logbook["token"]})
    assert r.status_code == 403


def test_delete_stops_the_code_at_once_and_keeps_checkins(client, people, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    visitor, other = people.make("周一"), people.make("吴二")
    assert client.post("/api/scan", headers=visitor["headers"],
                       json={"code": logbook["token"]}).status_code == 201
    stranger = people.make("郑三")
    r = client.delete(f"/api/logbooks/{logbook['id']}", headers=stranger["headers"])
    assert r.status_code == 403
    assert client.delete(f"/api/logbooks/{logbook['id']}",
                         headers=owner["headers"]).status_code == 204
    r = client.post("/api/scan", headers=other["headers"], json={"code": logbook["token"]})
    assert r.status_code == 410 and r.json()["error"] == "logbook_deleted"
    got = client.get(f"/api/logbooks/{logbook['id']}", headers=owner["headers"]).json()
    assert got["state"] == "deleted"
    assert client.delete(f"/api/logbooks/{logbook['id']}",
                         headers=owner["headers"]).status_code == 404


def test_abnormal_visitor_raises_alert(client, people, run_jobs, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    visitor = people.make("冯四")
    _make_yellow(client, run_jobs, visitor["id_number"], "popup", "travel")
    r = client.post("/api/scan", headers=visitor["headers"], json={"code": logbook["token"]})
    assert r.status_code == 201
    assert r.json()["status"] == "popup" and r.json()["popup_kind"] == "travel"
    assert r.json()["alert"] is True


def test_registrar_turning_yellow_revokes_logbooks(client, people, run_jobs, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    visitor = people.make()
    _make_yellow(client, run_jobs, owner["id_number"])
    r = client.post("/api/scan", headers=visitor["headers"], json={"code": logbook["token"]})
    assert r.status_code == 410 and r.json()["error"] == "logbook_revoked"


def test_proxy_checkin_for_visitor_without_phone(client, people, venue_with_logbook):
    # More in tests/web/test_proxy_checkins.py (no claims, no probing, limits, audit).
    owner, venue, logbook = venue_with_logbook
    from models.idnumber import make_id_number

    elder = make_id_number("110102", date(1940, 2, 2), 1)
    url = f"/api/logbooks/{logbook['id']}/proxy-checkins"
    r = client.post(url, headers=owner["headers"], json={"name": "陈老伯", "id_number": elder})
    assert r.status_code == 201, r.text
    assert r.json()["via"] == "proxy" and r.json()["name"] == "陈**"
    assert r.json()["status"] == "unknown" and r.json()["minor"] is False
    r = client.post(url, headers=owner["headers"], json={"name": "陈老伯", "id_number": "123"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_id_number"
    stranger = people.make()
    r = client.post(url, headers=stranger["headers"], json={"name": "陈老伯", "id_number": elder})
    assert r.status_code == 403


def test_exports_are_masked_bom_csv_and_xlsx(client, people, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    visitor = people.make("=HYPERLINK")  # a name that would be a formula in a spreadsheet
    client.post("/api/scan", headers=visitor["headers"], json={"code": logbook["token"]})
    r = client.get(f"/api/logbooks/{logbook['id']}/export.csv", headers=owner["headers"])
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][0].startswith("编号") and len(rows) == 2
    assert rows[1][3] == "'=*********"
    assert visitor["id_number"] not in r.text
    r = client.get(f"/api/logbooks/{logbook['id']}/export.xlsx", headers=owner["headers"])
    assert r.status_code == 200
    sheet = load_workbook(io.BytesIO(r.content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[1][3] == "'=*********" and values[1][4].count("*") == 14
    stranger = people.make()
    assert client.get(f"/api/logbooks/{logbook['id']}/export.csv",
                      headers=stranger["headers"]).status_code == 403
    assert client.get(f"/api/logbooks/{logbook['id']}/export.pdf",
                      headers=owner["headers"]).status_code == 404


@pytest.mark.parametrize("label", ["\x01=SUM(A1)\x07", "入口\x08\x1b[31m\x7f\x9f",
                                   "\t+1\r\n", "@cmd|' /C calc'!A0", "-2+3"])
def test_exports_drop_control_characters_and_neutralise_formulas(client, people,
                                                                  venue_with_logbook, label):
    owner, venue, _logbook = venue_with_logbook
    r = client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                    json={"label": label})
    assert r.status_code == 201, r.text
    book = r.json()
    visitor = people.make("李四")
    assert client.post("/api/scan", headers=visitor["headers"],
                       json={"code": book["token"]}).status_code == 201
    clean = "".join(ch for ch in label.strip() if ord(ch) >= 32 and not 0x7f <= ord(ch) <= 0x9f)
    expected = "'" + clean if clean[:1] in ("=", "+", "-", "@") else clean
    r = client.get(f"/api/logbooks/{book['id']}/export.csv", headers=owner["headers"])
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 2 and rows[1][2] == expected
    r = client.get(f"/api/logbooks/{book['id']}/export.xlsx", headers=owner["headers"])
    assert r.status_code == 200, r.text
    values = list(load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True))
    assert values[1][2] == expected
    for row in (rows[1], values[1]):
        assert not any(str(v).startswith(("=", "+", "-", "@")) for v in row if v is not None)


def test_exports_speak_the_registrars_language(client, people, run_jobs, venue_with_logbook):
    owner, _venue, logbook = venue_with_logbook
    for name, status, kind in [("王小明", "green", None), ("张三丰", "red", None),
                               ("司马光", "popup", "travel"), ("李雷", "yellow", None)]:
        person = people.make(name)
        if status != "green":
            r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
                {"id_number": person["id_number"], "status": status, "reason": "流调",
                 **({"popup_kind": kind} if kind else {})}]})
            assert r.status_code == 202
            run_jobs()
        assert client.post("/api/scan", headers=person["headers"],
                           json={"code": logbook["token"]}).status_code == 201
    url = f"/api/logbooks/{logbook['id']}/export"
    rows = list(csv.reader(io.StringIO(
        client.get(f"{url}.csv", headers=owner["headers"]).content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["编号", "登记时间（北京时间）"] and rows[0][5] == "健康状态"
    assert [r[5] for r in rows[1:]] == ["未见异常", "集中观察", "弹窗", "居家观察"]
    assert rows[3][6] == "行程核验" and rows[2][7] == "是" and rows[1][7] == "否"
    assert {r[9] for r in rows[1:]} == {"扫码"}
    for row in rows[1:]:  # Beijing time to the second: no offset, no microseconds
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row[1]), row[1]
    listed = client.get(f"/api/logbooks/{logbook['id']}/checkins",
                        headers=owner["headers"]).json()["items"]
    assert rows[1][1] == listed[0]["at"][:19].replace("T", " ")  # the API's +08:00 time
    english = list(csv.reader(io.StringIO(client.get(
        f"{url}.csv?lang=en", headers=owner["headers"]).content.decode("utf-8-sig"))))
    assert english[0][5] == "Status"
    assert [r[5] for r in english[1:]] == ["No abnormality", "Centralized observation",
                                           "Action needed", "Home observation"]
    assert english[3][6] == "Travel check" and english[2][7] == "Yes"
    sheet = load_workbook(io.BytesIO(client.get(f"{url}.xlsx?lang=en",
                                                headers=owner["headers"]).content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][1] == "Checked in (Beijing time)" and values[2][5] == "Centralized observation"
    # The language cookie (set by the pages' ?lang=) is followed too.
    client.cookies.set("scanbook_lang", "en")
    try:
        assert "No abnormality" in client.get(f"{url}.csv", headers=owner["headers"]).text
    finally:
        client.cookies.delete("scanbook_lang")


def test_citizen_conflict_and_invalid_id(client, people):
    someone = people.make()
    r = client.post("/api/admin/citizens", headers=ADMIN,
                    json={"name": "x", "id_number": someone["id_number"]})
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    r = client.post("/api/admin/citizens", headers=ADMIN,
                    json={"name": "x", "id_number": "110105194912310021"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_id_number"
    assert "X" in r.json()["message"]
    me = client.get("/api/me", headers=someone["headers"]).json()
    assert me["name_masked"] == "张**" and me["status"] == "green" and me["minor"] is False


def test_listing_pages_with_after_and_limit(client, people, venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    for i in range(5):
        v = people.make(f"访客{i}")
        client.post("/api/scan", headers=v["headers"], json={"code": logbook["token"]})
    url = f"/api/logbooks/{logbook['id']}/checkins"
    first = client.get(url, headers=owner["headers"], params={"limit": 2}).json()
    assert len(first["items"]) == 2
    rest = client.get(url, headers=owner["headers"],
                      params={"after": first["next_after"], "limit": 10}).json()
    assert len(rest["items"]) == 3
    ids = [i["id"] for i in first["items"] + rest["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 5
    r = client.get(url, headers=owner["headers"], params={"limit": "abc"})
    assert r.status_code == 422
