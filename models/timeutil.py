"""Timestamps: stored in UTC, shown in Beijing time (+08:00), parsed only with an offset."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from models.errors import ValidationFailed

BEIJING = timezone(timedelta(hours=8), "CST")


def iso(dt: datetime) -> str:
    return dt.astimezone(BEIJING).isoformat()


def parse_iso(value: object, field: str) -> datetime:
    """An ISO 8601 timestamp that carries its offset (a naive time is ambiguous: refused)."""
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} 必须是 ISO 8601 时间 / {field} must be an ISO 8601 string")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            f"{field} 不是有效的 ISO 8601 时间 / {field} is not ISO 8601"
        ) from None
    if dt.tzinfo is None:
        raise ValidationFailed(f"{field} 必须带时区偏移 / {field} must carry a UTC offset")
    return dt
