"""What crosses the socket to the check-in writer: errors travel as their contract code, and
the web layer answers the rebuilt error exactly as it would the original."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import orjson
import pytest

from ingest import wire
from models.checkins import CheckinRequest, CheckinResult
from models.errors import (
    CodeExpired,
    DomainError,
    LogbookUnavailable,
    TooManyRequests,
    UnknownCode,
    ValidationFailed,
)
from web.ratelimit import rate_limited_handler
from web.responses import domain_error

ERRORS = [
    UnknownCode("无效的登记码 / unknown logbook code"),
    ValidationFailed("未知的居民 / unknown citizen"),
    LogbookUnavailable("suspended", "整改中"),
    LogbookUnavailable("deleted"),
    CodeExpired("过期 / expired"),
    TooManyRequests(17),
    DomainError("anything", code="some_new_code", detail={"k": [1, 2]}),
]


async def _answer(error: DomainError):
    if isinstance(error, TooManyRequests):
        return await rate_limited_handler(None, error)
    return domain_error(error)


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.code)
def test_an_error_crosses_by_its_code_and_is_answered_the_same(error):
    import asyncio

    result = CheckinResult({"id": 7, "venue_id": 1}, "场所", created=True)
    ok, back = wire.decode_reply(wire.encode_answer([result, error]))
    assert ok == result
    assert (back.code, back.message, back.detail) == (error.code, error.message, error.detail)
    original, rebuilt = asyncio.run(_answer(error)), asyncio.run(_answer(back))
    assert rebuilt.status_code == original.status_code
    assert rebuilt.body == original.body
    assert dict(rebuilt.headers) == dict(original.headers)


def test_requests_cross_whole():
    requests = [CheckinRequest(citizen_id=1, code="abc", limit=30),
                CheckinRequest(citizen_id=2, logbook_id=9, via="proxy", helper_id=3,
                               at=datetime(2026, 12, 6, 1, 2, 3, tzinfo=UTC))]
    assert wire.decode_requests(wire.encode_requests(requests)) == requests


@pytest.mark.parametrize("exc,raised", [
    (sqlite3.OperationalError("database is locked"), wire.WriterUnavailable),
    (wire.WriterUnavailable("gone"), wire.WriterUnavailable),
    (ValueError("a bug"), RuntimeError),
])
def test_a_failed_batch_crosses_as_its_kind(exc, raised):
    message = wire.encode_failure(exc)
    assert orjson.loads(message)[0] == "failed"
    with pytest.raises(raised, match=str(exc)):
        wire.decode_reply(message)
