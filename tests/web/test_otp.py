"""Sign-in by phone number and a one-time SMS code: the development gateway, hashed
short-lived codes with limited tries, rate limits, shared phones, the session cookie."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from models.idnumber import make_id_number
from models.settings import load_settings
from tests.conftest import ADMIN
from web import otp

PHONE = "13912345678"


def register(client, name: str, phone: str, seq: int) -> dict:
    from datetime import date

    id_number = make_id_number("110108", date(1988, 6, 1), 800 + seq)
    r = client.post("/api/admin/citizens", headers=ADMIN,
                    json={"name": name, "id_number": id_number, "phone": phone})
    assert r.status_code == 201, r.text
    return {**r.json(), "id_number": id_number}


def ask(client, phone: str = PHONE, **headers):
    return client.post("/api/auth/otp", json={"phone": phone}, headers=headers)


def verify(client, code: str, phone: str = PHONE, **extra):
    return client.post("/api/auth/verify", json={"phone": phone, "code": code, **extra})


def test_a_registered_phone_gets_a_code_that_signs_the_browser_in(client, redis_client,
                                                                   caplog):
    me = register(client, "张三丰", PHONE, 1)
    with caplog.at_level(logging.WARNING, logger="scanbook.sms"):
        r = ask(client)
    assert r.status_code == 202 and r.json()["ttl"] == otp.CODE_TTL
    code = otp.last_dev_code(redis_client, PHONE)
    assert code and len(code) == 6 and code.isdigit()
    # The development gateway writes the code to the server log, the phone number masked.
    sent = [rec.getMessage() for rec in caplog.records if rec.name == "scanbook.sms"]
    assert any(code in line and otp.mask_phone(PHONE) in line for line in sent), sent
    assert PHONE not in caplog.text and PHONE[3:] not in caplog.text
    # Only a hash is kept with the code's state.
    stored = redis_client.hgetall(f"sb:otp:{PHONE}")
    assert code.encode() not in b"".join(stored.values())
    assert 0 < redis_client.ttl(f"sb:otp:{PHONE}") <= otp.CODE_TTL

    assert client.get("/api/me").status_code == 401
    r = verify(client, code)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == me["id"] and r.json()["name_masked"] == "张**"
    assert r.json()["signed_in"] is True
    assert client.get("/api/me").json()["id"] == me["id"]  # the session cookie
    assert client.cookies.get("scanbook_csrf")  # and its CSRF token for the page's writes

    client.cookies.clear()
    assert verify(client, code).status_code == 401  # used up
    assert client.get("/api/me").status_code == 401


def test_wrong_codes_are_counted_and_the_code_dropped(client, redis_client):
    register(client, "李四", PHONE, 1)
    ask(client)
    code = otp.last_dev_code(redis_client, PHONE)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(otp.MAX_TRIES - 1):
        r = verify(client, wrong)
        assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
    assert verify(client, wrong).status_code == 401  # the fifth wrong try
    r = verify(client, code)  # past MAX_TRIES even the right code is refused
    assert r.status_code == 429 and r.json()["error"] == "rate_limited"
    assert verify(client, code).status_code == 401  # and it is gone


def test_an_unregistered_phone_gets_the_same_answer_and_no_code(client, redis_client, caplog):
    register(client, "李四", PHONE, 1)
    with caplog.at_level(logging.INFO, logger="scanbook.sms"):
        r = ask(client, "13700000000")
    assert r.status_code == 202 and r.json() == ask(client, PHONE).json()
    assert otp.last_dev_code(redis_client, "13700000000") is None
    assert not [rec for rec in caplog.records if rec.name == "scanbook.sms"
                and "13700000000" in rec.getMessage()]
    assert verify(client, "123456", "13700000000").status_code == 401


def test_sending_is_rate_limited_per_phone(client, redis_client):
    register(client, "李四", PHONE, 1)
    assert ask(client).status_code == 202
    r = ask(client)
    assert r.status_code == 429 and r.json()["error"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 60


def test_a_phone_shared_by_several_citizens_asks_who(client, redis_client):
    parent = register(client, "王大明", PHONE, 1)
    child = register(client, "王小明", f"+86 {PHONE}", 2)  # registered with the prefix
    ask(client)
    code = otp.last_dev_code(redis_client, PHONE)
    r = verify(client, code)
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    choices = r.json()["detail"]["choices"]
    assert [c["citizen_id"] for c in choices] == [parent["id"], child["id"]]
    assert [c["name_masked"] for c in choices] == ["王**", "王**"]
    assert all("*" in c["id_masked"] for c in choices)
    assert client.get("/api/me").status_code == 401
    r = verify(client, code, citizen_id=child["id"])  # the same code, with the choice
    assert r.status_code == 200 and r.json()["id"] == child["id"]
    client.cookies.clear()
    assert verify(client, code, citizen_id=parent["id"]).status_code == 401  # used up


def test_another_citizens_id_is_not_a_choice(client, redis_client, people):
    register(client, "王大明", PHONE, 1)
    stranger = people.make("赵六")
    ask(client)
    r = verify(client, otp.last_dev_code(redis_client, PHONE), citizen_id=stranger["id"])
    assert r.status_code == 401


@pytest.mark.parametrize("phone", ["+86 139-1234-5678", "8613912345678", "139 1234 5678"])
def test_phone_numbers_are_normalized(client, redis_client, phone):
    register(client, "李四", PHONE, 1)
    assert ask(client, phone).status_code == 202
    assert otp.last_dev_code(redis_client, PHONE)


@pytest.mark.parametrize("body", [{"phone": "12345"}, {"phone": 13912345678}, {},
                                  {"phone": "139123456789"}, {"phone": "23912345678"}])
def test_bad_phone_numbers_are_refused(client, body):
    r = client.post("/api/auth/otp", json=body)
    assert r.status_code == 422 and r.json()["error"] == "validation_error"


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "１２３４５６", 123456])
def test_bad_codes_are_refused(client, code):
    r = client.post("/api/auth/verify", json={"phone": PHONE, "code": code})
    assert r.status_code == 422


def test_only_json_is_taken(client, redis_client):
    """A cross-site form (text/plain) cannot drive the sign-in (login CSRF)."""
    register(client, "李四", PHONE, 1)
    r = client.post("/api/auth/otp", content=b'{"phone": "13912345678"}',
                    headers={"Content-Type": "text/plain"})
    assert r.status_code == 422
    assert otp.last_dev_code(redis_client, PHONE) is None


def test_gateways(redis_client, tmp_path):
    settings = load_settings({"SCANBOOK_DATA_DIR": str(tmp_path)})
    dev = otp.load_gateway(settings, redis_client)
    assert isinstance(dev, otp.DevSmsGateway) and dev.keep
    production = dataclasses.replace(settings, env="production")
    refusing = otp.load_gateway(production, redis_client)
    with pytest.raises(Exception) as caught:
        refusing.send_code(PHONE, "123456", 60)
    assert getattr(caught.value, "code", None) == "unavailable"
    custom = dataclasses.replace(production, sms_gateway="tests.web.test_otp:RecordingGateway")
    gateway = otp.load_gateway(custom, redis_client)
    gateway.send_code(PHONE, "654321", 60)
    assert gateway.sent == [(PHONE, "654321")]


class RecordingGateway:
    """A stand-in SMS provider (SCANBOOK_SMS_GATEWAY = "module:factory")."""

    def __init__(self, settings):
        self.sent: list[tuple[str, str]] = []

    def send_code(self, phone: str, code: str, ttl: int) -> None:
        self.sent.append((phone, code))
