"""Rotating entrance codes: the logbook's code, a 30-second window number and an HMAC.

An entrance display shows `{code}.{window}.{mac}` and fetches a new one every WINDOW_SECONDS,
so a photo of the screen stops working soon after it was taken. A printed poster keeps the
plain code, which never rotates. The scan path calls `resolve` — pure, one HMAC — before the
group commit and hands on the plain code.

Acceptance: the current window always; the previous one for GRACE_SECONDS after it ended (a
visitor who scanned just before the code changed and taps 登记 a moment later); nothing
older (`CodeExpired`, 410 `code_expired`). A scan queued on a phone that was offline carries
its scan time: the code is checked against that time, which may lie at most OFFLINE_SECONDS
in the past (the check-in is recorded at that time, so a replayed photo can only ever claim
the moment the photo was taken, and only for OFFLINE_SECONDS).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from models.errors import CodeExpired, UnknownCode

WINDOW_SECONDS = 30
GRACE_SECONDS = 20
OFFLINE_SECONDS = 10 * 60
SEPARATOR = "."
_MAC_BYTES = 9  # 72 bits, 12 characters: guessing one is hopeless inside 50 seconds
_MAX_WINDOW_DIGITS = 12


@dataclass(frozen=True)
class RotatingCode:
    code: str  # what the QR code carries after /s/
    window: int
    starts_at: float  # epoch seconds
    expires_at: float  # when the display should show the next one


def window_of(epoch: float) -> int:
    return int(epoch // WINDOW_SECONDS)


def _mac(secret: str, base: str, window: int) -> str:
    digest = hmac.new(secret.encode(), f"rotating:{base}:{window}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:_MAC_BYTES]).decode()


def make_code(base: str, window: int, secret: str) -> str:
    """The rotating code of logbook code `base` for one window."""
    return f"{base}{SEPARATOR}{window}{SEPARATOR}{_mac(secret, base, window)}"


def current(base: str, secret: str, now: float) -> RotatingCode:
    """The code an entrance display shows at `now` (epoch seconds)."""
    window = window_of(now)
    start = window * WINDOW_SECONDS
    return RotatingCode(make_code(base, window, secret), window, start, start + WINDOW_SECONDS)


def is_rotating(code: str) -> bool:
    return SEPARATOR in code


def parse(code: str) -> tuple[str, int, str] | None:
    """(base, window, mac) of a well-formed rotating code, else None."""
    parts = code.split(SEPARATOR)
    if len(parts) != 3:
        return None
    base, window, mac = parts
    if not base or not window.isascii() or not window.isdigit() or len(window) > \
            _MAX_WINDOW_DIGITS:
        return None
    return base, int(window), mac


def resolve(code: str, secret: str, *, now: float, scanned_at: float | None = None) -> str:
    """The logbook code inside a rotating code that may be used now; raises UnknownCode for
    a forged or malformed one and CodeExpired for one that is too old (see the module)."""
    parsed = parse(code)
    if parsed is None:
        raise UnknownCode("无效的登记码 / unknown logbook code")
    base, window, mac = parsed
    if not hmac.compare_digest(mac.encode(), _mac(secret, base, window).encode()):
        raise UnknownCode("无效的登记码 / unknown logbook code")
    at = now
    if scanned_at is not None and now - OFFLINE_SECONDS <= scanned_at <= now:
        at = scanned_at
    current_window = window_of(at)
    if window > current_window + 1:  # from the future (a clock far ahead): not ours
        raise UnknownCode("无效的登记码 / unknown logbook code")
    ended = (window + 1) * WINDOW_SECONDS
    if window < current_window and at > ended + GRACE_SECONDS:
        raise CodeExpired("登记码已过期，请扫描入口屏幕上的最新二维码 / this code has expired: "
                          "scan the code now on the entrance screen")
    return base
