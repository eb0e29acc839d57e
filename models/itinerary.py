"""The travel popup's itinerary verification (../shared/CONTRACT.md "Additions"): the citizen
starts one, only the itinerary platform finishes it, with a signed callback.

The signature is `X-Scanbook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>">` under SCANBOOK_ITINERARY_SECRET: the timestamp inside the MAC bounds a
captured callback's life to TOLERANCE seconds, and the platform's `reference`, stored with a
unique constraint, refuses it a second time within them.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from models.crypto import id_lookup
from models.errors import Conflict, DomainError, NotFound, ValidationFailed
from models.health import Change, ChangeOutcome, apply_changes
from models.idnumber import parse_id_number
from models.status import PopupKind, Status
from models.tables import Batch, Citizen, ItineraryCheck
from models.timeutil import iso, parse_iso

HEADER = "X-Scanbook-Signature"
TOLERANCE = 300  # seconds between the signature's t and our clock (contract)
MAX_REFERENCE = 200
PASSED, FAILED, PENDING = "passed", "failed", "pending"
REASON = "行程核验通过 / itinerary verification passed"
ACTOR = "itinerary_platform"

_c = Citizen.__table__
_ic = ItineraryCheck.__table__
_b = Batch.__table__


class BadSignature(DomainError):
    """401 unauthenticated: a callback not (or no longer) signed by the platform."""

    code = "unauthenticated"


def signature(secret: str, body: bytes, t: int) -> str:
    """The header value the platform sends for `body` at unix time `t`."""
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(header: str | None, body: bytes, secret: str, *, now: float) -> None:
    """Raise BadSignature unless the header signs exactly `body` within TOLERANCE of now.
    Several v1 values may be given (a platform rotating its secret); one must match."""
    if not header:
        raise BadSignature(f"缺少签名 / missing {HEADER}")
    t, macs = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            t = int(value)
        elif key == "v1" and value:
            macs.append(value.strip().lower())
    if t is None or not macs:
        raise BadSignature(f"签名格式错误 / malformed {HEADER}: t=<unix>,v1=<hex>")
    if abs(now - t) > TOLERANCE:
        raise BadSignature("签名已过期 / signature timestamp is more than 300 s from now")
    expected = signature(secret, body, t).rpartition("v1=")[2]
    # Every candidate is compared (no early exit), each in constant time.
    if not sum(hmac.compare_digest(expected, mac) for mac in macs):
        raise BadSignature("签名无效 / signature does not match")


@dataclass(frozen=True)
class Callback:
    id_number: str
    result: str
    reference: str
    at: datetime


def parse_callback(body: object) -> Callback:
    """The callback body `{id_number, result: passed|failed, reference, at}` (signed already)."""
    if not isinstance(body, dict):
        raise ValidationFailed("请求体须为对象 / the body must be an object")
    id_number = parse_id_number(body.get("id_number")).value
    result = body.get("result")
    if result not in (PASSED, FAILED):
        raise ValidationFailed("result 须为 passed 或 failed / result must be passed or failed")
    reference = body.get("reference")
    if not isinstance(reference, str) or not 0 < len(reference.strip()) <= MAX_REFERENCE:
        raise ValidationFailed(f"reference 须为1–{MAX_REFERENCE}字 / reference must be 1–"
                               f"{MAX_REFERENCE} characters")
    return Callback(id_number, result, reference.strip(), parse_iso(body.get("at"), "at"))


def check_public(row) -> dict:
    return {"id": row.id, "state": row.state, "started_at": iso(row.started_at),
            "finished_at": iso(row.finished_at) if row.finished_at else None}


def latest_check(conn: Connection, *, citizen_id: int) -> dict | None:
    """The citizen's most recent verification, for their card."""
    row = conn.execute(select(_ic).where(_ic.c.citizen_id == citizen_id)
                       .order_by(_ic.c.id.desc()).limit(1)).first()
    return check_public(row) if row else None


def _has_travel_popup(conn: Connection, citizen_id: int) -> bool:
    row = conn.execute(select(_c.c.status, _c.c.popup_kind).where(_c.c.id == citizen_id)).first()
    if row is None:
        raise NotFound("居民不存在 / citizen not found")
    return row.status == Status.POPUP and row.popup_kind == PopupKind.TRAVEL


def start_check(conn: Connection, *, citizen_id: int, now: datetime) -> dict:
    """The citizen pressed 继续: a pending verification (the one already pending, if any).
    It changes nothing: only the platform's callback can finish it."""
    if not _has_travel_popup(conn, citizen_id):
        raise Conflict("当前没有需要核验行程的弹窗 / there is no itinerary popup to clear")
    row = conn.execute(select(_ic).where(_ic.c.citizen_id == citizen_id, _ic.c.state == PENDING)
                       .order_by(_ic.c.id.desc()).limit(1)).first()
    if row is None:
        check_id = conn.execute(insert(_ic).values(citizen_id=citizen_id, state=PENDING,
                                                   started_at=now).returning(_ic.c.id)
                                ).scalar_one()
        row = conn.execute(select(_ic).where(_ic.c.id == check_id)).one()
    return check_public(row)


def apply_callback(conn: Connection, callback: Callback, *, now: datetime
                   ) -> tuple[dict, ChangeOutcome]:
    """Record the platform's verdict in the caller's transaction (the caller holds the notice
    lock, commits, then publishes the outcome). `passed` turns a travel popup green; `failed`
    leaves it; any other status is never touched. A reference seen before raises
    BadSignature (a replay)."""
    citizen_id = conn.execute(select(_c.c.id).where(
        _c.c.id_hash == id_lookup(callback.id_number))).scalar()
    if citizen_id is None:
        raise NotFound("查无此人 / no citizen with this ID number")
    if conn.execute(select(_ic.c.id).where(_ic.c.reference == callback.reference)).first():
        raise BadSignature("重放的回调 / this reference was already used")
    pending = conn.execute(select(_ic.c.id).where(
        _ic.c.citizen_id == citizen_id, _ic.c.state == PENDING).order_by(_ic.c.id.desc())
        .limit(1)).scalar()
    values = {"state": callback.result, "reference": callback.reference, "finished_at": now,
              "platform_at": callback.at}
    try:
        with conn.begin_nested():  # the unique reference backs the check above
            if pending is None:
                conn.execute(insert(_ic).values(citizen_id=citizen_id, started_at=now,
                                                **values))
            else:
                conn.execute(update(_ic).where(_ic.c.id == pending).values(**values))
    except IntegrityError:
        raise BadSignature("重放的回调 / this reference was already used") from None
    outcome = ChangeOutcome()
    changed = callback.result == PASSED and _has_travel_popup(conn, citizen_id)
    if changed:
        batch_id = conn.execute(insert(_b).values(
            kind="itinerary", actor=ACTOR,
            payload={"citizen_id": citizen_id, "reference": callback.reference,
                     "result": callback.result},
            created_at=now).returning(_b.c.id)).scalar_one()
        apply_changes(conn, batch_id=batch_id, outcome=outcome, now=now,
                      changes=[Change(citizen_id, Status.GREEN.value, None, REASON)])
        summary = outcome.summary()
        conn.execute(update(_b).where(_b.c.id == batch_id).values(result=summary,
                                                                  finished_at=now))
    return {"reference": callback.reference, "result": callback.result,
            "changed": changed}, outcome
