"""Rotating entrance codes: an opaque token per window that reveals nothing of the permanent
code; current window, grace for the previous one, nothing older; forgeries are unknown."""

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
    open_code,
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
    assert open_code(first.code, SECRET) == (BASE, first.window)
    assert len(first.code) < 64  # a small QR code
    assert all(c.isalnum() or c in "-_." for c in first.code)  # URL-safe


def _pieces(text: str, size: int = 4) -> set[str]:
    return {text[i:i + size] for i in range(len(text) - size + 1)}


def test_the_token_reveals_nothing_of_the_permanent_code():
    codes = [current(BASE, SECRET, T0 + i * WINDOW_SECONDS).code for i in range(50)]
    for code in codes:
        token = code.removeprefix("r.")
        assert BASE not in code and BASE.lower() not in code.lower()
        # not even a piece of it: no 4 characters of the permanent code appear in order
        # more often than chance would have it (a 4-gram of a random token: ~1 in 3,000)
        assert len(_pieces(BASE) & _pieces(token)) <= 1
        assert "." not in token  # nothing before a dot to scan as the permanent code
        with pytest.raises(UnknownCode):
            open_code(code, "another secret" * 3)  # nothing to read without the key
    # every window's token is new, and two logbooks' tokens of one window share nothing
    assert len(set(codes)) == len(codes)
    other = current("ZyXwVuTsRqPoNmLkJiHgFe", SECRET, T0).code
    assert other != codes[0] and len(other) == len(codes[0])
    # the window is not readable either: consecutive tokens differ throughout
    first, second = codes[0].removeprefix("r."), codes[1].removeprefix("r.")
    assert sum(a == b for a, b in zip(first, second, strict=True)) < len(first) // 4


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


def _flip(code: str, at: int) -> str:
    chars = list(code)
    chars[at] = "A" if chars[at] != "A" else "B"
    return "".join(chars)


@pytest.mark.parametrize("tamper", [
    lambda c: _flip(c, len(c) - 1),  # the last character
    lambda c: _flip(c, 2),  # the first character of the token
    lambda c: _flip(c, len(c) // 2),  # the middle
    lambda c: c[:-4],  # cut short
    lambda c: c + "AAAA",  # made longer
    lambda c: "r." + BASE,  # the permanent code dressed as a token
    lambda c: "r." + c[2:][::-1],  # shuffled
])
def test_forged_codes_are_unknown(tamper):
    code = current(BASE, SECRET, T0).code
    with pytest.raises(UnknownCode):
        resolve(tamper(code), SECRET, now=T0)
    with pytest.raises(UnknownCode):
        resolve(code, "another secret" * 3, now=T0)


@pytest.mark.parametrize("bad", ["r.", "r.!!!!", "r.a", "r..", "r.＝＝", "r." + "A" * 300,
                                 f"{BASE}.{int(T0 // 30)}.AAAAAAAAAAAA"])
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
