"""One-time sign-in codes sent by SMS: the gateway interface, the development gateway, and
the codes themselves (hashed in Redis, short-lived, a few tries each).

    code = issue(redis, secret, phone)       # store its hash; the caller sends it
    gateway.send_code(phone, code, CODE_TTL)
    check(redis, secret, phone, code)         # True once; wrong tries are counted

The development gateway writes the code to the server log (logger "scanbook.sms") and, outside
production, also keeps the last code per phone in Redis (`sb:otp:dev:<phone>`) so tests and
local tools can read it. Production needs SCANBOOK_SMS_GATEWAY = "module:factory", a callable
taking the settings and returning an SmsGateway; without it sign-in by SMS answers 503.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import logging
import re
import secrets
from typing import Protocol

from models.errors import DomainError, RateLimited, ValidationFailed
from models.settings import Settings

log = logging.getLogger("scanbook.sms")

CODE_TTL = 300  # seconds a code lives: long enough for a slow SMS, short enough to not linger
CODE_DIGITS = 6
MAX_TRIES = 5  # wrong codes before the code is dropped (then ask for a new one)
_KEY = "sb:otp:{phone}"
_DEV_KEY = "sb:otp:dev:{phone}"
_PHONE = re.compile(r"1[3-9][0-9]{9}")  # a mainland mobile number


class SmsGateway(Protocol):
    """Sends a sign-in code to a phone (an SMS provider's API in production)."""

    def send_code(self, phone: str, code: str, ttl: int) -> None: ...


class DevSmsGateway:
    """Development and tests: the code goes to the log; `keep` also stores it in Redis."""

    def __init__(self, redis, *, keep: bool):
        self.redis = redis
        self.keep = keep

    def send_code(self, phone: str, code: str, ttl: int) -> None:
        # The number masked like everywhere else (no phone number in any log line); the
        # developer who asked for the code knows which phone it was for.
        log.warning("开发环境短信 / development SMS to %s: 扫码登记验证码 %s，%d 分钟内有效",
                    mask_phone(phone), code, ttl // 60)
        if self.keep:
            self.redis.set(_DEV_KEY.format(phone=phone), code, ex=ttl)


class UnconfiguredGateway:
    """Production without SCANBOOK_SMS_GATEWAY: refuses rather than logging codes."""

    def send_code(self, phone: str, code: str, ttl: int) -> None:
        raise DomainError("短信服务未配置 / SMS sign-in is not configured (SCANBOOK_SMS_GATEWAY)",
                          code="unavailable")


def load_gateway(settings: Settings, redis) -> SmsGateway:
    if settings.sms_gateway:
        module, _, name = settings.sms_gateway.partition(":")
        return getattr(importlib.import_module(module), name)(settings)
    if settings.production:
        return UnconfiguredGateway()
    return DevSmsGateway(redis, keep=True)


def last_dev_code(redis, phone: str) -> str | None:
    """The last code the development gateway sent to `phone` (tests, local tools)."""
    value = redis.get(_DEV_KEY.format(phone=phone))
    return value.decode() if isinstance(value, bytes) else value


def normalize_phone(value: object) -> str:
    """11 digits of a mainland mobile number; spaces, dashes and +86 are dropped."""
    if not isinstance(value, str) or len(value) > 32:
        raise ValidationFailed("请输入手机号 / phone is required")
    digits = re.sub(r"[\s\-()]", "", value)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if not _PHONE.fullmatch(digits):
        raise ValidationFailed("手机号格式不正确 / not a mobile phone number (11 digits)")
    return digits


def phone_forms(phone: str) -> list[str]:
    """How a normalized number may have been registered (Citizen.phone is free text)."""
    return [phone, f"+86{phone}", f"+86 {phone}", f"86{phone}"]


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


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
