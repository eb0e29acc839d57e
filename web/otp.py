"""One-time sign-in codes sent by SMS (hashed in Redis, short-lived, a few tries each).

    code = issue(redis, secret, phone)       # store its hash; the caller sends it
    gateway.send_code(phone, code, CODE_TTL)
    check(redis, secret, phone, code)         # True once; wrong tries are counted

The gateway itself (SmsGateway, the development gateway that keeps the last code per phone in
Redis, load_gateway) lives in realtime/sms.py, shared with the status notices the workers
send by SMS; its names are importable from here as before.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from models.errors import RateLimited, ValidationFailed
from realtime.sms import (  # noqa: F401  (this module's public names since the first day)
    DevSmsGateway,
    SmsGateway,
    UnconfiguredGateway,
    last_dev_code,
    load_gateway,
    mask_phone,
    normalize_phone,
)

CODE_TTL = 300  # seconds a code lives: long enough for a slow SMS, short enough to not linger
CODE_DIGITS = 6
MAX_TRIES = 5  # wrong codes before the code is dropped (then ask for a new one)
_KEY = "sb:otp:{phone}"


def phone_forms(phone: str) -> list[str]:
    """How a normalized number may have been registered (Citizen.phone is free text)."""
    return [phone, f"+86{phone}", f"+86 {phone}", f"86{phone}"]


def _digest(secret: str, phone: str, code: str) -> str:
    return hmac.new(secret.encode(), f"otp:{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def issue(redis, secret: str, phone: str) -> str:
    """A fresh code for `phone` (replacing any earlier one); only its hash is stored."""
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    key = _KEY.format(phone=phone)
    with redis.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        pipe.hset(key, mapping={"hash": _digest(secret, phone, code), "tries": 0})
        pipe.expire(key, CODE_TTL)
        pipe.execute()
    return code


def clean_code(value: object) -> str:
    if not isinstance(value, str) or not value.strip().isdigit() or not value.isascii() \
            or len(value.strip()) != CODE_DIGITS:
        raise ValidationFailed(f"请输入{CODE_DIGITS}位验证码 / the code is {CODE_DIGITS} digits")
    return value.strip()


def check(redis, secret: str, phone: str, code: str, *, consume: bool = True) -> bool:
    """Whether `code` is the phone's current code. Every try counts; past MAX_TRIES the code
    is dropped. A right code is used up (consume) — only one request can ever use it."""
    key = _KEY.format(phone=phone)
    with redis.pipeline(transaction=True) as pipe:
        pipe.hincrby(key, "tries", 1)
        pipe.hget(key, "hash")
        tries, stored = pipe.execute()
    if stored is None:  # no code (never sent, expired, used); hincrby made a stray key
        redis.delete(key)
        return False
    if tries > MAX_TRIES:
        redis.delete(key)
        raise RateLimited("验证码错误次数过多，请重新获取 / too many wrong codes: ask for a "
                          "new one")
    expected = stored.decode() if isinstance(stored, bytes) else stored
    if not hmac.compare_digest(expected, _digest(secret, phone, code)):
        return False
    return not consume or redis.delete(key) == 1
