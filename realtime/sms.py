"""The SMS gateway: sign-in codes (web/otp.py) and status notices (workers/push.py) go
through the same interface, so one provider integration serves both.

The development gateway writes every message to the server log (logger "scanbook.sms", the
phone masked) and, outside production, keeps them in Redis so tests and local tools can read
them: the last code per phone (`sb:otp:dev:<phone>`) and the latest notices per phone
(`sb:sms:dev:<phone>`, newest first). Production needs SCANBOOK_SMS_GATEWAY =
"module:factory", a callable taking the settings and returning an SmsGateway; without it
sign-in by SMS answers 503 and notices are not sent (the job logs it).

Here, not in web/: the workers send notices and may not import web (docs/architecture.md).
"""

from __future__ import annotations

import importlib
import logging
import re
from typing import Protocol

from models.errors import DomainError, ValidationFailed
from models.settings import Settings

log = logging.getLogger("scanbook.sms")

_DEV_KEY = "sb:otp:dev:{phone}"
_DEV_NOTICES = "sb:sms:dev:{phone}"
_DEV_KEPT = 20  # notices kept per phone by the development gateway
_DEV_TTL = 86400
_PHONE = re.compile(r"1[3-9][0-9]{9}")  # a mainland mobile number


class SmsGateway(Protocol):
    """Sends SMS to a mainland mobile number (an SMS provider's API in production)."""

    def send_code(self, phone: str, code: str, ttl: int) -> None: ...

    def send_notice(self, phone: str, text: str) -> None: ...


class DevSmsGateway:
    """Development and tests: messages go to the log; `keep` also stores them in Redis."""

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

    def send_notice(self, phone: str, text: str) -> None:
        log.warning("开发环境短信 / development SMS to %s: %s", mask_phone(phone), text)
        if self.keep:
            key = _DEV_NOTICES.format(phone=phone)
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.lpush(key, text)
                pipe.ltrim(key, 0, _DEV_KEPT - 1)
                pipe.expire(key, _DEV_TTL)
                pipe.execute()


class UnconfiguredGateway:
    """Production without SCANBOOK_SMS_GATEWAY: refuses rather than logging messages."""

    def _refuse(self) -> None:
        raise DomainError("短信服务未配置 / SMS is not configured (SCANBOOK_SMS_GATEWAY)",
                          code="unavailable")

    def send_code(self, phone: str, code: str, ttl: int) -> None:
        self._refuse()

    def send_notice(self, phone: str, text: str) -> None:
        self._refuse()


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


def dev_notices(redis, phone: str) -> list[str]:
    """The notices the development gateway sent to `phone`, newest first."""
    return [v.decode() if isinstance(v, bytes) else v
            for v in redis.lrange(_DEV_NOTICES.format(phone=phone), 0, -1)]


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


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"
