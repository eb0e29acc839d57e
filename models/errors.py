"""Domain errors. The web layer maps each `code` to the contract's HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    code = "validation_error"

    def __init__(self, message: str, *, code: str | None = None, detail: object = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.detail = detail


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class Conflict(DomainError):
    code = "conflict"


class ValidationFailed(DomainError):
    code = "validation_error"


class InvalidIdNumber(DomainError):
    code = "invalid_id_number"


class RegistrarNotGreen(DomainError):
    code = "registrar_not_green"


class LogbookUnavailable(DomainError):
    """A scan at a logbook that is suspended, revoked or deleted (code logbook_<state>)."""

    def __init__(self, state: str, reason: str | None = None):
        messages = {
            "suspended": "该登记簿已暂停使用 / this logbook is suspended",
            "revoked": "该登记簿已被撤销 / this logbook has been revoked",
            "deleted": "该登记簿已被删除 / this logbook has been deleted",
        }
        super().__init__(messages.get(state, state), code=f"logbook_{state}", detail=reason)
        self.state = state


class UnknownCode(DomainError):
    code = "unknown_code"


class CodeExpired(DomainError):
    """A rotating entrance code past its window and grace (models/rotating.py): 410."""

    code = "code_expired"


class InvitationExpired(DomainError):
    """An invitation to be a co-registrar past its `expires_at` (models/registrars.py): 410."""

    code = "invitation_expired"


class RateLimited(DomainError):
    code = "rate_limited"


class TooManyRequests(RateLimited):
    """429 rate_limited past a rate limit (ingest/limits.py); `retry_after` is the whole
    seconds until the window ends (the Retry-After header)."""

    def __init__(self, retry_after: int):
        super().__init__("请求过于频繁，请稍后再试 / too many requests, please retry later")
        self.retry_after = retry_after
