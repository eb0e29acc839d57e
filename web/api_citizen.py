"""Citizen endpoints: my card (with what my status means and my latest itinerary
verification), my notices and traces, scan (check-in), 他人代查, 留言."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ingest.limits import SCAN_BUCKET, SCAN_WINDOW
from models import personal_codes, rotating
from models.audit import my_traces, proxy_check
from models.checkins import CheckinRequest, scanned_at
from models.citizens import citizen_card
from models.errors import DomainError, UnknownCode, ValidationFailed
from models.guidance import guidance, status_guide
from models.households import add_dependant, dependant_ids, list_dependants, remove_dependant
from models.itinerary import latest_check
from models.messages import follow_up, my_messages, post_message
from models.notices import notices_after
from models.push import unsubscribe_all
from models.stays import checkout_citizen, current_stay, my_visits
from models.tables import Citizen, utcnow
from models.timeutil import iso
from realtime.events import checkout_messages
from web.api_photo import photo_url
from web.auth import current_citizen, require
from web.common import in_session, write_then_publish
from web.qr import qr_svg_data_url
from web.responses import JSON, int_query, parse_json, read_json

MAX_CODE = 200
_CODE = re.compile(r"[A-Za-z0-9_-]+")  # logbook codes are URL-safe base64 (models.venues)


def card(citizen: Citizen, itinerary_url: str) -> dict:
    """GET /api/me: the card, and what its state means (label, advice {zh, en}, action)."""
    return {**citizen_card(citizen),
            **guidance(citizen.status, citizen.popup_kind, itinerary_url),
            "itinerary_url": itinerary_url, "photo_url": photo_url(citizen)}



async def me(request: Request) -> Response:
    """The card, and `itinerary`: my latest itinerary verification (pending until the
    platform answers), or null."""
    citizen = await current_citizen(request)
    check = await in_session(request, lambda session: latest_check(
        session.connection(), citizen_id=citizen.id))
    return JSON({**card(citizen, request.app.state.settings.itinerary_url), "itinerary": check})


async def status_guide_get(request: Request) -> Response:
    """Every state the card can show, with its advice (public: no personal data)."""
    return JSON({"items": status_guide(request.app.state.settings.itinerary_url)})


async def my_notices(request: Request) -> Response:
    """GET /api/me/notices?after=&limit=: the /ws/me feed for clients that poll."""
    principal = await require(request, "citizen")
    after = int_query(request, "after", default=0)
    limit = int_query(request, "limit", default=100, low=1, high=500)

    def load(session):
        return notices_after(session.connection(), citizen_id=principal.citizen_id,
                             after=after, limit=limit)

    items = await in_session(request, load)
    return JSON({"items": items, "next_after": items[-1]["id"] if items else after})


async def my_traces_get(request: Request) -> Response:
    """GET /api/me/traces: when my record was traced, by which office and why."""
    principal = await require(request, "citizen")
    items = await in_session(request, my_traces, citizen_id=principal.citizen_id)
    return JSON({"items": items})


async def proxy_check_post(request: Request) -> Response:
    """POST /api/proxy-check (他人代查): rate limited per caller (the Redis limiter, so the
    limit holds across processes), audited, answered only for a matching name + ID number."""
    principal = await require(request, "citizen")
    await request.app.state.limiter.hit(
        "proxy-check", principal.citizen_id,
        limit=request.app.state.settings.proxy_check_rate_per_min)
    body = await read_json(request)
    result = await in_session(request, proxy_check, caller_id=principal.citizen_id,
                              name=body.get("name"), id_number=body.get("id_number"))
    return JSON(result)


def scan_response(result) -> dict:
    c = result.checkin
    return {
        "checkin_id": c["id"],
        "status": c["status"],
        "popup_kind": c["popup_kind"],
        "alert": c["alert"],
        "minor": c["minor"],
        "venue": {"id": c["venue_id"], "name": result.venue_name},
        "logbook": {"id": c["logbook_id"], "label": c["logbook_label"]},
        "at": c["at"],
        "left_at": c.get("left_at"),
        "name_masked": c["name"],
        "id_masked": c["id_number"],
    }


async def scan(request: Request) -> Response:
    """POST /api/scan: the check-in. 201 new; 200 the same check-in within 60 s."""
    principal = await require(request, "citizen")
    answer, status = await check_in(request.app.state, principal.citizen_id,
                                    request.body)
    return JSON(answer, status_code=status)


async def check_in(state, citizen_id: int,
                   body: Callable[[], Awaitable[bytes]]) -> tuple[dict, int]:
    """A signed-in citizen's scan: (the answer, 201 new | 200 the same check-in within 60 s).
    The one implementation behind the route above and the scan lane (web/lanes.py). Every
    scan counts against the citizen's rate limit once: in the check-in writer, with its
    batch (ingest/limits.py), or here when it is refused before it gets there (429 first
    when it is also over the limit)."""
    limit = state.settings.scan_rate_per_min
    try:
        request, dependants = await _checkin_request(citizen_id, body, state.settings.secret,
                                                     limit)
    except DomainError:
        await state.limiter.hit(SCAN_BUCKET, citizen_id, limit=limit, window=SCAN_WINDOW)
        raise
    if dependants is not None:  # a household's scan (models/households.py)
        return await _group_check_in(state, request, dependants)
    result = await state.writer.submit(request)
    return scan_response(result), 201 if result.created else 200


async def _group_check_in(state, request: CheckinRequest, link_ids: object
                          ) -> tuple[dict, int]:
    """The scan checks in the citizen and the dependants named (their household links):
    each member gets a check-in of their own (made with the citizen, `helper_id`), in the
    same batch. The answer is the citizen's, with `members`: each member's answer, or the
    error that member's check-in got."""
    def members() -> list[int]:
        with state.engine.connect() as conn:
            return dependant_ids(conn, helper_id=request.citizen_id, link_ids=link_ids)

    ids = await run_in_threadpool(members)
    results = await asyncio.gather(
        state.writer.submit(request),
        *(state.writer.submit(replace(request, citizen_id=member, helper_id=request.citizen_id))
          for member in ids), return_exceptions=True)
    own = results[0]
    if isinstance(own, BaseException):
        raise own
    answer = scan_response(own)
    answer["members"] = [
        scan_response(r) if not isinstance(r, BaseException) else
        {"error": getattr(r, "code", "unavailable"), "message": getattr(r, "message", str(r))}
        for r in results[1:]]
    return answer, 201 if own.created else 200


async def _checkin_request(citizen_id: int, body: Callable[[], Awaitable[bytes]],
                           secret, limit: int) -> tuple[CheckinRequest, object]:
    """The scan's request, and its `dependants` (None when absent: the usual scan)."""
    data = parse_json(await body())
    code = data.get("code")
    if not isinstance(code, str) or not 0 < len(code) <= MAX_CODE:
        raise ValidationFailed("code 必填 / code is required (the token inside the QR code)")
    code = code.strip()
    # A scan queued on an offline phone carries its own time (≤ 2 h old): recorded at it.
    at = None if data.get("scanned_at") is None else scanned_at(data["scanned_at"], utcnow())
    if rotating.is_rotating(code):  # an entrance display's code: check its window, unwrap
        code = rotating.resolve(code, secret, now=time.time(),
                                scanned_at=at.timestamp() if at else None)
    if not _CODE.fullmatch(code):  # no logbook has it; and a NUL fails a PostgreSQL batch
        raise UnknownCode("无效的登记码 / unknown logbook code")
    return (CheckinRequest(citizen_id=citizen_id, code=code, at=at, limit=limit),
            data.get("dependants"))


async def checkout(request: Request) -> Response:
    """POST /api/me/checkout {checkin_id?}: I leave (离场): my open stay, or the one named,
    ends now. 404 when no stay is open."""
    principal = await require(request, "citizen")
    body = await read_json(request) if await request.body() else {}

    def write(conn):
        answer, events = checkout_citizen(conn, citizen_id=principal.citizen_id,
                                          checkin_id=body.get("checkin_id"), now=utcnow())
        return answer, checkout_messages(events)

    return JSON(await write_then_publish(request, write, notices=False))


async def my_stay(request: Request) -> Response:
    """GET /api/me/stay: my open stay, with how full its venue is (the scan result page says
    when it is full). 404 when no stay is open."""
    principal = await require(request, "citizen")

    def load(session):
        return current_stay(session.connection(), citizen_id=principal.citizen_id, now=utcnow())

    return JSON(await in_session(request, load))


async def my_code(request: Request) -> Response:
    """GET /api/me/code: a personal code (反扫) for a registrar to scan, valid for a minute;
    the page asks for a new one every `refresh_seconds`."""
    principal = await require(request, "citizen")
    code, expires = personal_codes.make_code(
        principal.citizen_id, request.app.state.settings.secret, now=time.time())
    return JSON({"code": code, "expires_at": iso(expires),
                 "refresh_seconds": personal_codes.REFRESH_SECONDS,
                 "qr": qr_svg_data_url(code)}, headers={"Cache-Control": "no-store"})


async def dependants_list(request: Request) -> Response:
    """GET /api/me/dependants: the household members I check in with me."""
    principal = await require(request, "citizen")
    items = await in_session(request, list_dependants, helper_id=principal.citizen_id)
    return JSON({"items": items})


async def dependants_add(request: Request) -> Response:
    """POST /api/me/dependants {name, id_number}: add a registered citizen to my household
    (the same 404 for a wrong name as for an unknown number; rate limited, audited)."""
    principal = await require(request, "citizen")
    await request.app.state.limiter.hit(
        "dependant", principal.citizen_id,
        limit=request.app.state.settings.proxy_check_rate_per_min)
    body = await read_json(request)
    item = await in_session(request, add_dependant, helper_id=principal.citizen_id,
                            name=body.get("name"), id_number=body.get("id_number"))
    return JSON(item, status_code=201)


async def dependants_remove(request: Request) -> Response:
    principal = await require(request, "citizen")
    await in_session(request, remove_dependant, helper_id=principal.citizen_id,
                     link_id=request.path_params["id"])
    return Response(status_code=204)


async def my_checkins(request: Request) -> Response:
    """GET /api/me/checkins?after=&limit=: my own visits of the retention period, oldest
    first (venue, arrival, departure)."""
    principal = await require(request, "citizen")
    after = int_query(request, "after", default=0)
    limit = int_query(request, "limit", default=100, low=1, high=500)
    since = utcnow() - timedelta(days=request.app.state.settings.retention_days)

    def load(session):
        return my_visits(session.connection(), citizen_id=principal.citizen_id, since=since,
                         after=after, limit=limit)

    items = await in_session(request, load)
    return JSON({"items": items, "next_after": items[-1]["checkin_id"] if items else after})


async def messages_create(request: Request) -> Response:
    """POST /api/messages {text} (留言): 201 the new conversation {id, text, at, handled,
    replies}."""
    principal = await require(request, "citizen")
    body = await read_json(request)
    message = await in_session(request, post_message, citizen_id=principal.citizen_id,
                               text=body.get("text"))
    return JSON(message, status_code=201)


async def my_messages_get(request: Request) -> Response:
    """GET /api/me/messages: my 留言 with the officials' replies, newest first."""
    principal = await require(request, "citizen")
    limit = int_query(request, "limit", default=20, low=1, high=100)
    items = await in_session(request, my_messages, citizen_id=principal.citizen_id,
                             limit=limit)
    return JSON({"items": items})


async def messages_follow_up(request: Request) -> Response:
    """POST /api/messages/{id}/replies {text}: I answer in my own conversation."""
    principal = await require(request, "citizen")
    body = await read_json(request)
    answer = await in_session(request, follow_up, citizen_id=principal.citizen_id,
                              message_id=request.path_params["id"], text=body.get("text"))
    return JSON(answer, status_code=201)


def _revoke_token(session, citizen_id: int) -> str | None:
    """Clear the citizen's bearer token and forget their browsers' push subscriptions (no
    more notifications to a phone that is no longer signed in); the token's hash (for the
    caches to forget)."""
    citizen = session.get(Citizen, citizen_id)
    old = citizen.token_hash if citizen else None
    if old is not None:
        citizen.token_hash = None
        session.add(citizen)
    unsubscribe_all(session.connection(), citizen_id=citizen_id)
    session.commit()
    return old


async def sign_out_everywhere(request: Request) -> Response:
    """POST /api/me/sign-out-everywhere: my bearer token stops working and every session of
    mine (this one too) ends, on every web process; my open WebSockets close (4401); no
    browser gets my notifications any more. I sign in again by SMS code."""
    principal = await require(request, "citizen")
    old = await in_session(request, _revoke_token, principal.citizen_id)
    if old is not None:
        request.app.state.tokens.forget(old)  # this process at once; the others by message
    ended = await request.app.state.sessions.end_all("citizen", principal.citizen_id,
                                                     token_hash=old)
    request.session.clear()
    return JSON({"signed_out": True, "sessions_ended": ended, "token_revoked": old is not None})


# The hottest route of all, matched first: Starlette tries routes in order, and each regex
# tried costs every scan (bench/README.md: routing was a measurable share of a scan's CPU).
hot_routes = [Route("/api/scan", scan, methods=["POST"])]

routes = [
    Route("/api/me", me, methods=["GET"]),
    Route("/api/me/notices", my_notices, methods=["GET"]),
    Route("/api/me/checkout", checkout, methods=["POST"]),
    Route("/api/me/checkins", my_checkins, methods=["GET"]),
    Route("/api/me/stay", my_stay, methods=["GET"]),
    Route("/api/me/code", my_code, methods=["GET"]),
    Route("/api/me/dependants", dependants_list, methods=["GET"]),
    Route("/api/me/dependants", dependants_add, methods=["POST"]),
    Route("/api/me/dependants/{id:int}", dependants_remove, methods=["DELETE"]),
    Route("/api/me/traces", my_traces_get, methods=["GET"]),
    Route("/api/me/sign-out-everywhere", sign_out_everywhere, methods=["POST"]),
    Route("/api/status-guide", status_guide_get, methods=["GET"]),
    Route("/api/proxy-check", proxy_check_post, methods=["POST"]),
    Route("/api/messages", messages_create, methods=["POST"]),
    Route("/api/messages/{id:int}/replies", messages_follow_up, methods=["POST"]),
    Route("/api/me/messages", my_messages_get, methods=["GET"]),
]
