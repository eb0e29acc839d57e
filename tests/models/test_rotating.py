"""Rotating entrance codes: current window, grace for the previous one, nothing older."""

from __future__ import annotations

import pytest

from models.errors import CodeExpired, UnknownCode
from models.rotating import (
    GRACE_SECONDS,
    OFFLINE_SECONDS,
    WINDOW_SECONDS,
    current,
    is_rotating,
    make_code,
    parse,
    resolve,
)

SECRET = "s" * 32
BASE = "AbCdEfGhIjKlMnOpQrStUv"
T0 = 1_650_000_000.0  # a window boundary (divisible by 30)


def test_the_code_changes_every_window_and_names_its_logbook():
    first = current(BASE, SECRET, T0)
    assert first.starts_at == T0 and first.expires_at == T0 + WINDOW_SECONDS
    assert current(BASE, SECRET, T0 + WINDOW_SECONDS - 0.01).code == first.code
    second = current(BASE, SECRET, T0 + WINDOW_SECONDS)
    assert second.code != first.code and second.window == first.window + 1
    assert is_rotating(first.code) and not is_rotating(BASE)
    assert parse(first.code)[0] == BASE
    assert len(first.code) < 64  # a small QR code
    assert all(c.isalnum() or c in "-_." for c in first.code)  # URL-safe


def test_current_and_previous_window_within_grace_resolve():
    code = current(BASE, SECRET, T0).code
    assert resolve(code, SECRET, now=T0) == BASE
    assert resolve(code, SECRET, now=T0 + WINDOW_SECONDS - 1) == BASE
    # replaced at T0+30, still taken for GRACE_SECONDS
    assert resolve(code, SECRET, now=T0 + WINDOW_SECONDS + GRACE_SECONDS) == BASE


def test_older_codes_are_refused_as_expired():
    code = current(BASE, SECRET, T0).code
    with pytest.raises(CodeExpired) as caught:
        resolve(code, SECRET, now=T0 + WINDOW_SECONDS + GRACE_SECONDS + 0.5)
    assert caught.value.code == "code_expired"
    with pytest.raises(CodeExpired):
        resolve(code, SECRET, now=T0 + 3600)


@pytest.mark.parametrize("tamper", [
    lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"),  # another MAC
    lambda c: c.replace(BASE, "X" + BASE[1:]),  # another logbook
    lambda c: ".".join([BASE, str(int(c.split(".")[1]) + 1), c.split(".")[2]]),  # moved window
])
def test_forged_codes_are_unknown(tamper):
    code = current(BASE, SECRET, T0).code
    with pytest.raises(UnknownCode):
        resolve(tamper(code), SECRET, now=T0)
    with pytest.raises(UnknownCode):
        resolve(code, "another secret" * 3, now=T0)


@pytest.mark.parametrize("bad", ["a.b", "a..b", ".1.x", "a.1.b.c", "a.-1.x", "a.１.x",
                                 "a." + "9" * 13 + ".x"])
def test_malformed_codes_are_unknown(bad):
    with pytest.raises(UnknownCode):
        resolve(bad, SECRET, now=T0)


def test_a_code_from_the_far_future_is_unknown():
    later = make_code(BASE, current(BASE, SECRET, T0).window + 5, SECRET)
    with pytest.raises(UnknownCode):
        resolve(later, SECRET, now=T0)


def test_an_offline_scan_is_checked_at_its_scan_time_within_bounds():
    code = current(BASE, SECRET, T0).code
    arrives = T0 + 5 * 60
    assert resolve(code, SECRET, now=arrives, scanned_at=T0 + 3) == BASE
    # a claimed scan time older than OFFLINE_SECONDS is not believed: checked at arrival
    late = T0 + OFFLINE_SECONDS + 60
    with pytest.raises(CodeExpired):
        resolve(code, SECRET, now=late, scanned_at=T0 + 3)
    # a scan time in the future is not believed either
    with pytest.raises(CodeExpired):
        resolve(code, SECRET, now=arrives, scanned_at=arrives + 10)
