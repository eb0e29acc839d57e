"""Rotating entrance codes: an opaque token per 30-second window, sealed by the server.

An entrance display shows `r.<token>` and fetches a new one every WINDOW_SECONDS, so a photo
of the screen stops working soon after it was taken. The token is the logbook's permanent
code and the window number, encrypted and authenticated with AES-SIV under a key derived from
SCANBOOK_SECRET: it reveals nothing of the permanent code (nor which logbook it is, nor its
window) to anyone without the key, and it cannot be altered or made up. AES-SIV is
deterministic, so every display of a logbook shows the same token in a window, and the server
maps it back (`resolve`, pure: one decryption) without storing anything. A printed poster
keeps the plain permanent code, which never rotates.

Acceptance: the current window always; the previous one for GRACE_SECONDS after it ended (a
visitor who scanned just before the code changed and taps 登记 a moment later); nothing
older (`CodeExpired`, 410 `code_expired`). A scan queued on a phone that was offline carries
its scan time: the code is checked against that time, which may lie at most OFFLINE_SECONDS
in the past (the check-in is recorded at that time, so a replayed photo can only ever claim
the moment the photo was taken, and only for OFFLINE_SECONDS).
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from models.errors import CodeExpired, UnknownCode

WINDOW_SECONDS = 30
GRACE_SECONDS = 20
OFFLINE_SECONDS = 10 * 60
PREFIX = "r."  # permanent codes are URL-safe base64: they never contain a dot
_AAD = b"scanbook rotating entrance code v1"
_WINDOW = struct.Struct(">I")  # window numbers fit 32 bits until the year 6053
_MAX_TOKEN = 200


@dataclass(frozen=True)
class RotatingCode:
    code: str  # what the QR code carries after /s/
    window: int
    starts_at: float  # epoch seconds
    expires_at: float  # when the display should show the next one


def window_of(epoch: float) -> int:
    return int(epoch // WINDOW_SECONDS)


@lru_cache(maxsize=4)
def _cipher(secret: str) -> AESSIV:
    """AES-256-SIV (a 512-bit key) derived from the secret for this use only."""
    key = HKDF(algorithm=hashes.SHA256(), length=64, salt=None,
               info=b"scanbook rotating entrance code key").derive(secret.encode())
    return AESSIV(key)


def make_code(base: str, window: int, secret: str) -> str:
    """The rotating code of logbook code `base` for one window."""
    sealed = _cipher(secret).encrypt(_WINDOW.pack(window) + base.encode(), [_AAD])
    return PREFIX + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()


def current(base: str, secret: str, now: float) -> RotatingCode:
    """The code an entrance display shows at `now` (epoch seconds)."""
    window = window_of(now)
    start = window * WINDOW_SECONDS
    return RotatingCode(make_code(base, window, secret), window, start, start + WINDOW_SECONDS)


def is_rotating(code: str) -> bool:
    return code.startswith(PREFIX)


def open_code(code: str, secret: str) -> tuple[str, int]:
    """(logbook code, window) sealed in a rotating code; UnknownCode for anything that is not
    one this server made (malformed, altered, or sealed under another secret)."""
    token = code[len(PREFIX):] if is_rotating(code) else ""
    if not token or len(token) > _MAX_TOKEN or not token.isascii():
        raise UnknownCode("无效的登记码 / unknown logbook code")
    try:
        sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        plain = _cipher(secret).decrypt(sealed, [_AAD])
        (window,) = _WINDOW.unpack_from(plain)
        base = plain[_WINDOW.size:].decode()
    except (binascii.Error, ValueError, InvalidTag, struct.error, UnicodeDecodeError):
        raise UnknownCode("无效的登记码 / unknown logbook code") from None
    if not base:
        raise UnknownCode("无效的登记码 / unknown logbook code")
    return base, window


def resolve(code: str, secret: str, *, now: float, scanned_at: float | None = None) -> str:
    """The logbook code inside a rotating code that may be used now; raises UnknownCode for
    a forged or malformed one and CodeExpired for one that is too old (see the module)."""
    base, window = open_code(code, secret)
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
