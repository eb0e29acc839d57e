"""What crosses the socket between the web process and its check-in writer.

Requests go as lists of their fields, results as the public check-in, and a refused request
as its contract error: code, message, detail and the Retry-After of a 429. The web process
makes the error again from its code (`error_from_code`), never from a class name, so the
contract's code is the whole interface. A batch that failed as a whole goes as its kind:
`unavailable` (503) or `error` (500).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

import orjson
import psycopg
from sqlalchemy.exc import OperationalError

from models.checkins import CheckinRequest, CheckinResult
from models.db import describe_error
from models.errors import DomainError, LogbookUnavailable, TooManyRequests

_LOGBOOK = "logbook_"  # logbook_suspended, logbook_revoked, logbook_deleted


class WriterUnavailable(Exception):
    """The batch could not be written: the database was unavailable or locked past
    SQLITE_BUSY_SECONDS, or the writer process died (503, like a database outage)."""


def is_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or locked (not a problem with the batch)."""
    return isinstance(exc, (OperationalError, sqlite3.OperationalError,
                            psycopg.OperationalError, WriterUnavailable))


def encode_requests(requests: list[CheckinRequest]) -> bytes:
    return orjson.dumps([[r.citizen_id, r.code, r.logbook_id, r.via, r.helper_id,
                          None if r.at is None else r.at.isoformat(), r.limit, r.visitor_id]
                         for r in requests])


def decode_requests(message: bytes) -> list[CheckinRequest]:
    return [CheckinRequest(citizen_id=c, code=code, logbook_id=lb, via=via, helper_id=helper,
                           at=None if at is None else datetime.fromisoformat(at), limit=limit,
                           visitor_id=visitor)
            for c, code, lb, via, helper, at, limit, visitor in orjson.loads(message)]


def encode_answer(results: list[CheckinResult | DomainError]) -> bytes:
    return orjson.dumps(["ok", [_encode_result(r) for r in results]])


def encode_failure(exc: BaseException) -> bytes:
    # describe_error: the driver's first line, never the SQL's parameters (names, numbers).
    return orjson.dumps(["failed", ["unavailable" if is_unavailable(exc) else "error",
                                    describe_error(exc)]])


def decode_reply(reply: bytes) -> list[CheckinResult | DomainError]:
    """A batch's results, or raise its failure."""
    kind, payload = orjson.loads(reply)
    if kind == "failed":
        failure, message = payload
        if failure == "unavailable":
            raise WriterUnavailable(message)
        raise RuntimeError(f"check-in writer: {message}")
    return [_decode_result(item) for item in payload]


def _encode_result(result: CheckinResult | DomainError) -> list:
    if isinstance(result, CheckinResult):
        return [1, result.checkin, result.venue_name, result.created]
    return [0, result.code, result.message, result.detail,
            getattr(result, "retry_after", None)]


def _decode_result(item: list) -> CheckinResult | DomainError:
    if item[0] == 1:
        return CheckinResult(item[1], item[2], item[3])
    _, code, message, detail, retry_after = item
    return error_from_code(code, message, detail, retry_after)


def error_from_code(code: str, message: str, detail: object = None,
                    retry_after: int | None = None) -> DomainError:
    """The domain error a contract code stands for, as the web layer answers it: a 429 keeps
    its Retry-After, a logbook's refusal its state; every other code is a DomainError with
    that code (the web layer maps codes, not classes, to statuses)."""
    if retry_after is not None:
        return TooManyRequests(retry_after)
    if code.startswith(_LOGBOOK):
        return LogbookUnavailable(code.removeprefix(_LOGBOOK), detail)
    return DomainError(message, code=code, detail=detail)
