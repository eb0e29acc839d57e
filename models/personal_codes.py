"""Personal codes (反扫): a citizen's phone shows a QR code that a registrar scans, for visitors
who cannot scan the venue's code themselves.

A code says who and until when, sealed with AES-GCM under a key derived from the app's secret:
`sbp_` + base64url(nonce ‖ ciphertext ‖ tag). It is opaque (a registrar's scanner learns
nothing from it but the answer the server gives) and unforgeable; it is valid for
VALID_SECONDS, and the phone shows a new one every REFRESH_SECONDS, so the code on the screen
always has at least the difference left when it is scanned. A photo of it stops working
within a minute.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from models.errors import CodeExpired, UnknownCode

PREFIX = "sbp_"
VALID_SECONDS = 60
REFRESH_SECONDS = 30
_PLAIN = struct.Struct("!QI")  # citizen id, expiry (epoch seconds)
_NONCE = 12
_SIZE = _NONCE + _PLAIN.size + 16  # nonce, ciphertext, tag
_LABEL = b"scanbook personal code v1"


def _aead(secret: str) -> AESGCM:
    return AESGCM(hmac.new(secret.encode(), _LABEL, hashlib.sha256).digest())


def make_code(citizen_id: int, secret: str, *, now: float) -> tuple[str, datetime]:
    """A new code for the citizen, valid VALID_SECONDS from `now` (epoch seconds)."""
    expires = int(now) + VALID_SECONDS
    nonce = os.urandom(_NONCE)
    sealed = _aead(secret).encrypt(nonce, _PLAIN.pack(citizen_id, expires), PREFIX.encode())
    code = PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
    return code, datetime.fromtimestamp(expires, UTC)


def is_personal(code: object) -> bool:
    return isinstance(code, str) and code.startswith(PREFIX)


def read_code(code: object, secret: str, *, now: float) -> int:
    """The citizen a code names; UnknownCode (404) for anything not made by make_code with
    this secret, CodeExpired (410) once its minute is over."""
    unknown = UnknownCode("无效的个人登记码 / unknown personal code")
    if not is_personal(code) or len(code) > 100:
        raise unknown
    body = code[len(PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise unknown from None
    if len(raw) != _SIZE:
        raise unknown
    try:
        plain = _aead(secret).decrypt(raw[:_NONCE], raw[_NONCE:], PREFIX.encode())
    except InvalidTag:
        raise unknown from None
    citizen_id, expires = _PLAIN.unpack(plain)
    if now >= expires:
        raise CodeExpired("个人登记码已过期，请访客刷新后再扫 / this personal code has expired: "
                          "ask the visitor to show a fresh one")
    return citizen_id
