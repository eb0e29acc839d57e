"""The travel popup's itinerary verification: the citizen starts one (POST
/api/me/itinerary-verification), the itinerary platform finishes it with a signed callback
(POST /api/itinerary/callback, models/itinerary.py)."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models.itinerary import HEADER, apply_callback, parse_callback, start_check, verify_signature
from models.tables import utcnow
from realtime.events import citizen_channel, venue_channel
from web.auth import require
from web.common import in_session, write_then_publish
from web.responses import JSON, parse_json
from workers.push import queue_status_pushes


async def start(request: Request) -> Response:
    """POST /api/me/itinerary-verification: 202, a pending verification. Whatever the body
    says, it finishes nothing: the platform's callback does."""
    principal = await require(request, "citizen")

    def begin(session):
        check = start_check(session.connection(), citizen_id=principal.citizen_id,
                            now=utcnow())
        session.commit()
        return check

    check = await in_session(request, begin)
    return JSON({**check, "url": request.app.state.settings.itinerary_url}, status_code=202)


async def callback(request: Request) -> Response:
    """POST /api/itinerary/callback: the platform's verdict, signed over the raw body."""
    raw = await request.body()
    verify_signature(request.headers.get(HEADER), raw,
                     request.app.state.settings.itinerary_secret, now=time.time())
    verdict = parse_callback(parse_json(raw))

    notice_ids: list[int] = []

    def write(conn):
        answer, outcome = apply_callback(conn, verdict, now=utcnow())
        notice_ids.extend(n["id"] for n in outcome.notices)
        return answer, ([(citizen_channel(n["citizen_id"]), n) for n in outcome.notices]
                        + [(venue_channel(e["venue_id"]), e) for e in outcome.logbook_events])

    answer = await write_then_publish(request, write)
    # a closed page hears of it by Web Push (workers/push.py)
    await run_in_threadpool(queue_status_pushes, request.app.state.redis, notice_ids)
    return JSON(answer)


routes = [
    Route("/api/me/itinerary-verification", start, methods=["POST"]),
    Route("/api/itinerary/callback", callback, methods=["POST"]),
]
