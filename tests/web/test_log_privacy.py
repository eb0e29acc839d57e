"""No name, phone or ID number in any log line: a real database outage while an official
registers a citizen, the engines' errors, and the redacted error description."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from starlette.testclient import TestClient

from models.db import describe_error, make_engine
from models.idnumber import make_id_number
from models.settings import load_settings
from tests.conftest import ADMIN

NAME, PHONE = "欧阳娜娜", "13912345678"


def _secrets(id_number: str) -> list[str]:
    return [NAME, PHONE, PHONE[3:], id_number, id_number[6:14]]


def test_a_database_outage_logs_no_name_phone_or_id_number(engine, tmp_path, monkeypatch,
                                                           caplog):
    from datetime import date

    from tests.faults.test_db_down import outage_controls
    from web.app import create_app

    id_number = make_id_number("110101", date(1990, 5, 17), 7)
    with outage_controls(tmp_path) as (env, take_down, bring_back):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        with TestClient(create_app()) as client:
            assert client.get("/healthz").status_code == 200
            take_down()
            try:
                with caplog.at_level(logging.DEBUG):
                    r = client.post("/api/admin/citizens", headers=ADMIN, json={
                        "name": NAME, "id_number": id_number, "phone": PHONE})
            finally:
                bring_back()
            assert r.status_code == 503 and r.json()["error"] == "unavailable", r.text
    assert "dependency unavailable" in caplog.text  # the outage was logged ...
    for secret in _secrets(id_number):
        assert secret not in caplog.text, secret  # ... without who it was about


def test_engine_errors_hide_their_parameters_and_the_description_hides_the_row(engine):
    """A failing statement with a citizen's values: the engine's error shows the SQL without
    them; describe_error (what the log lines use) shows neither the SQL nor PostgreSQL's
    DETAIL, which quotes the failing row."""
    own = make_engine(load_settings().database_url)
    try:
        with own.connect() as conn, pytest.raises(IntegrityError) as caught:
            conn.execute(text("INSERT INTO citizen (name, phone) VALUES (:name, :phone)"),
                         {"name": NAME, "phone": PHONE})
    finally:
        own.dispose()
    full = str(caught.value)
    assert "INSERT INTO citizen" in full and "parameters hidden" in full
    assert PHONE not in full.split("DETAIL")[0] and NAME not in full.split("DETAIL")[0]
    line = describe_error(caught.value)
    assert line.startswith("IntegrityError: ") and "\n" not in line
    assert NAME not in line and PHONE not in line and "INSERT" not in line
