"""Citizen endpoints: my card, scan (check-in), 他人代查, 留言."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models.checkins import CheckinRequest
from models.citizens import citizen_card
from models.errors import ValidationFailed
from models.tables import Citizen, Message
from web.app import in_session
from web.auth import Unauthenticated, require
from web.responses import JSON, read_json

MAX_CODE = 200


async def me(request: Request) -> Response:
    principal = await require(request, "citizen")

    def load(session):
        return session.get(Citizen, principal.citizen_id)

    citizen = await in_session(request, load)
    if citizen is None:
        raise Unauthenticated("账户不存在 / account not found")
    return JSON(citizen_card(citizen))


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
        "name_masked": c["name"],
        "id_masked": c["id_number"],
    }


async def scan(request: Request) -> Response:
    """POST /api/scan: the check-in. 201 new; 200 the same check-in within 60 s."""
    principal = await require(request, "citizen")
    await request.app.state.limiter.hit(
        "scan", principal.citizen_id, limit=request.app.state.settings.scan_rate_per_min)
    body = await read_json(request)
    code = body.get("code")
    if not isinstance(code, str) or not 0 < len(code) <= MAX_CODE:
        raise ValidationFailed("code 必填 / code is required (the token inside the QR code)")
    result = await request.app.state.writer.submit(
        CheckinRequest(citizen_id=principal.citizen_id, code=code.strip())
    )
    return JSON(scan_response(result), status_code=201 if result.created else 200)


async def messages_create(request: Request) -> Response:
    principal = await require(request, "citizen")
    body = await read_json(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > 2000:
        raise ValidationFailed("留言内容须为1–2000字 / text must be 1–2000 characters")

    def save(session):
        message = Message(citizen_id=principal.citizen_id, text=text.strip())
        session.add(message)
        session.commit()
        return message.id

    return JSON({"id": await in_session(request, save)}, status_code=201)


routes = [
    Route("/api/me", me, methods=["GET"]),
    Route("/api/scan", scan, methods=["POST"]),
    Route("/api/messages", messages_create, methods=["POST"]),
]
