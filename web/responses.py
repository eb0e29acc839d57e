"""orjson responses and the contract's error format."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from models.errors import DomainError

STATUS = {
    "unauthenticated": 401,
    "forbidden": 403,
    "registrar_not_green": 403,
    "not_found": 404,
    "unknown_code": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "logbook_suspended": 410,
    "logbook_revoked": 410,
    "logbook_deleted": 410,
    "code_expired": 410,
    "invitation_expired": 410,
    "payload_too_large": 413,
    "invalid_id_number": 422,
    "validation_error": 422,
    "rate_limited": 429,
    "internal_error": 500,
    "unavailable": 503,
}


class JSON(Response):
    media_type = "application/json"

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


def error(code: str, message: str, status: int | None = None, **extra: object) -> JSON:
    body = {"error": code, "message": message, **extra}
    return JSON(body, status_code=status or STATUS.get(code, 400))


def domain_error(exc: DomainError) -> JSON:
    extra = {}
    if exc.detail is not None:
        extra["detail"] = exc.detail
    return error(exc.code, exc.message, **extra)


MAX_BODY = 32 * 1024 * 1024  # a 100,000-row status batch fits; anything larger is refused


def int_query(request: Request, name: str, *, default: int | None = None, low: int = 0,
              high: int = 2**62) -> int | None:
    """An integer query parameter in [low, high], `default` when absent; else 422."""
    from models.errors import ValidationFailed

    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(f"{name} 须为整数 / {name} must be an integer") from None
    if not low <= value <= high:
        raise ValidationFailed(f"{name} 须在 {low}–{high} 之间 / {name} must be {low}..{high}")
    return value


async def read_json(request: Request) -> dict:
    """The request body as a JSON object, or a validation_error naming what is wrong."""
    return parse_json(await request.body())


def parse_json(body: bytes) -> dict:
    """A request body as a JSON object, or a validation_error naming what is wrong."""
    from models.errors import ValidationFailed

    if len(body) > MAX_BODY:
        raise DomainError("请求体过大 / request body too large", code="payload_too_large")
    try:
        data = orjson.loads(body or b"null")
    except orjson.JSONDecodeError:
        raise ValidationFailed("请求体不是有效的 JSON / body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValidationFailed("请求体须为 JSON 对象 / body must be a JSON object")
    return data
