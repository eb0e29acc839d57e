"""Personal codes: opaque, sealed, a minute long."""

from __future__ import annotations

import base64

import pytest

from models.errors import CodeExpired, UnknownCode
from models.personal_codes import VALID_SECONDS, make_code, read_code

SECRET = "s" * 32
NOW = 1_780_000_000.0


def test_round_trip_and_expiry():
    code, expires = make_code(42, SECRET, now=NOW)
    assert code.startswith("sbp_") and "42" not in code
    assert expires.timestamp() == NOW + VALID_SECONDS
    assert read_code(code, SECRET, now=NOW) == 42
    assert read_code(code, SECRET, now=NOW + VALID_SECONDS - 1) == 42
    with pytest.raises(CodeExpired) as expired:
        read_code(code, SECRET, now=NOW + VALID_SECONDS)
    assert expired.value.code == "code_expired"


def test_two_codes_differ_and_name_nobody_else():
    a, _ = make_code(7, SECRET, now=NOW)
    b, _ = make_code(7, SECRET, now=NOW)
    assert a != b  # a fresh nonce each time: codes cannot be linked by their text
    assert read_code(a, SECRET, now=NOW) == read_code(b, SECRET, now=NOW) == 7


@pytest.mark.parametrize("mangle", [
    lambda c: c[:20] + ("A" if c[20] != "A" else "B") + c[21:],  # sealed bytes changed
    lambda c: c.replace("sbp_", "sbc_"),
    lambda c: c + "A",
    lambda c: "sbp_!!!",
    lambda c: "sbp_" + base64.urlsafe_b64encode(b"x" * 36).decode(),
    lambda c: 12345,
])
def test_forged_or_mangled_codes_are_unknown(mangle):
    code, _ = make_code(7, SECRET, now=NOW)
    with pytest.raises(UnknownCode):
        read_code(mangle(code), SECRET, now=NOW)


def test_another_secret_does_not_read_it():
    code, _ = make_code(7, SECRET, now=NOW)
    with pytest.raises(UnknownCode):
        read_code(code, "t" * 32, now=NOW)
