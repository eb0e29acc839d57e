"""Registrar endpoints: venues, co-registrars, logbooks, check-in listing, exports, proxy."""

from __future__ import annotations

import time

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models import audit, personal_codes
from models.checkins import CheckinRequest
from models.errors import NotFound
from models.registrars import (
    accept_invitation,
    decline_invitation,
    invitation_public,
    invite_registrar,
    my_invitations,
    remove_registrar,
    venue_registrars,
)
from models.stays import checkout_visitor, occupancy
from models.tables import utcnow
from models.venues import (
    create_logbook,
    create_venue,
    delete_logbook,
    get_logbook,
    get_venue,
    list_logbooks,
    logbook_public,
    registrar_venues,
    require_registrar,
    venue_public,
)
from models.visitors import proxy_visitor
from realtime.events import access_message, checkout_messages, venue_channel
from web import exports, i18n
from web.auth import current_citizen
from web.common import in_session, write_then_publish
from web.responses import JSON, int_query, read_json


def _public_url(request: Request) -> str:
    return request.app.state.settings.public_url


async def venues_create(request: Request) -> Response:
    citizen = await current_citizen(request)
    body = await read_json(request)
    venue = await in_session(request, create_venue, owner=citizen, body=body)
    return JSON(venue_public(venue), status_code=201)


async def venues_mine(request: Request) -> Response:
    """GET /api/venues: the venues where the caller is a registrar, with their occupancy."""
    citizen = await current_citizen(request)

    def load(session):
        venues = registrar_venues(session, citizen.id)
        inside = occupancy(session.connection(), [v.id for v, _ in venues], now=utcnow())
        return [{**venue_public(v, inside.get(v.id, 0)), "role": role} for v, role in venues]

    return JSON({"items": await in_session(request, load)})


async def venue_get(request: Request) -> Response:
    """GET /api/venues/{id}: one of the caller's venues, with its occupancy (open stays)."""
    citizen = await current_citizen(request)
    venue_id = request.path_params["id"]

    def load(session):
        duty = require_registrar(session, venue_id, citizen.id)
        venue = get_venue(session, venue_id)
        inside = occupancy(session.connection(), [venue_id], now=utcnow())
        return {**venue_public(venue, inside.get(venue_id, 0)), "role": duty.role}

    return JSON(await in_session(request, load))


async def registrars_add(request: Request) -> Response:
    """POST /api/venues/{id}/registrars {citizen_id}: the owner invites a co-registrar. 201
    and a pending invitation whoever the id names (models/registrars.py); rate limited per
    inviter, audited."""
    citizen = await current_citizen(request)
    settings = request.app.state.settings
    await request.app.state.limiter.hit("registrar-invite", citizen.id,
                                        limit=settings.invite_rate_per_hour, window=3600)
    body = await read_json(request)
    invitation = await in_session(
        request, invite_registrar, venue_id=request.path_params["id"], actor=citizen,
        citizen_id=body.get("citizen_id"), valid_days=settings.invitation_days)
    return JSON(invitation_public(invitation), status_code=201)


async def registrars_list(request: Request) -> Response:
    """GET /api/venues/{id}/registrars: its registrars; pending invitations for the owner."""
    citizen = await current_citizen(request)
    return JSON(await in_session(request, venue_registrars, venue_id=request.path_params["id"],
                                 actor=citizen))


async def registrars_remove(request: Request) -> Response:
    """DELETE /api/venues/{id}/registrars/{citizen_id}: the owner removes a co-registrar or
    withdraws an invitation; a co-registrar leaves (their own id). Their open feeds close
    4403 on every web process (realtime.events.access_changed's message, after the commit)."""
    citizen = await current_citizen(request)
    venue_id, target = request.path_params["id"], request.path_params["citizen_id"]

    def write(conn):
        with Session(bind=conn, expire_on_commit=False) as session:
            done = remove_registrar(session, venue_id=venue_id, actor=citizen,
                                    citizen_id=target)
        ended = done in ("removed", "left")
        return done, [access_message(citizens=[target])] if ended else []

    await write_then_publish(request, write, notices=False)
    return Response(status_code=204)


async def my_invitations_get(request: Request) -> Response:
    """GET /api/me/invitations: invitations to be a co-registrar, waiting for my answer."""
    citizen = await current_citizen(request)
    return JSON({"items": await in_session(request, my_invitations, citizen_id=citizen.id)})


async def invitation_accept(request: Request) -> Response:
    """POST /api/invitations/{id}/accept: become a co-registrar (needs a green status: 403
    registrar_not_green, told to the invitee only; 410 invitation_expired once expired)."""
    citizen = await current_citizen(request)
    invitation = await in_session(request, accept_invitation,
                                  invitation_id=request.path_params["id"], actor=citizen)
    return JSON(invitation_public(invitation))


async def invitation_decline(request: Request) -> Response:
    citizen = await current_citizen(request)
    invitation = await in_session(request, decline_invitation,
                                  invitation_id=request.path_params["id"], actor=citizen)
    return JSON(invitation_public(invitation))


async def logbooks_create(request: Request) -> Response:
    citizen = await current_citizen(request)
    body = await read_json(request)
    logbook = await in_session(
        request, create_logbook, venue_id=request.path_params["id"], actor=citizen, body=body
    )
    return JSON(logbook_public(logbook, _public_url(request)), status_code=201)


async def logbooks_list(request: Request) -> Response:
    citizen = await current_citizen(request)
    books = await in_session(request, list_logbooks, venue_id=request.path_params["id"],
                             actor=citizen)
    url = _public_url(request)
    return JSON({"items": [logbook_public(b, url) for b in books]})


async def logbook_get(request: Request) -> Response:
    citizen = await current_citizen(request)
    logbook = await in_session(request, get_logbook, logbook_id=request.path_params["id"],
                               actor=citizen)
    return JSON(logbook_public(logbook, _public_url(request)))


async def logbook_delete(request: Request) -> Response:
    citizen = await current_citizen(request)

    def write(conn):
        with Session(bind=conn, expire_on_commit=False) as session:
            event = delete_logbook(session, logbook_id=request.path_params["id"], actor=citizen)
        audit.record_on(conn, actor=audit.Actor("citizen", citizen.id),
                        action=audit.LOGBOOK_DELETE, target=f"logbook:{event['logbook_id']}",
                        detail={"venue_id": event["venue_id"]})
        return None, [(venue_channel(event["venue_id"]), event)]

    await write_then_publish(request, write, notices=False)
    return Response(status_code=204)



async def checkins_list(request: Request) -> Response:
    from models.checkins import checkins_after

    citizen = await current_citizen(request)
    logbook_id = request.path_params["id"]
    after = int_query(request, "after", default=0)
    limit = int_query(request, "limit", default=100, low=1, high=1000)
    await in_session(request, get_logbook, logbook_id=logbook_id, actor=citizen)

    def load(session):
        return checkins_after(session.connection(), logbook_id=logbook_id, after=after,
                              limit=limit)

    items = await in_session(request, load)
    return JSON({"items": items, "next_after": items[-1]["id"] if items else after})


async def export(request: Request) -> Response:
    fmt = request.path_params["fmt"]
    if fmt not in ("csv", "xlsx"):
        raise NotFound("仅支持 csv 与 xlsx / export is csv or xlsx")
    citizen = await current_citizen(request)

    def load(session):
        logbook = get_logbook(session, logbook_id=request.path_params["id"], actor=citizen)
        audit.record(session, actor=audit.Actor("citizen", citizen.id), action=audit.EXPORT,
                     target=f"logbook:{logbook.id}",
                     detail={"venue_id": logbook.venue_id, "format": fmt})
        session.commit()
        return logbook

    logbook = await in_session(request, load)
    engine = request.app.state.engine
    lang = i18n.lang_of(request)  # the page's language (?lang=, else its cookie)
    if fmt == "csv":
        return exports.csv_response(engine, logbook, lang)
    return await exports.xlsx_response(engine, logbook, lang)


async def proxy_checkin(request: Request) -> Response:
    """POST /api/logbooks/{id}/proxy-checkins: check in a visitor without a phone. Rate
    limited per registrar and audited; a registered citizen only when the name and the ID
    number are both theirs, anyone else as an unregistered visitor (status "unknown"), with
    the same answer whichever part did not match (models/visitors.py)."""
    citizen = await current_citizen(request)
    await request.app.state.limiter.hit(
        "proxy-checkin", citizen.id,
        limit=request.app.state.settings.proxy_checkin_rate_per_min)
    body = await read_json(request)
    logbook = await in_session(request, get_logbook, logbook_id=request.path_params["id"],
                               actor=citizen)
    who = await in_session(request, proxy_visitor, registrar=citizen, logbook=logbook,
                           name=body.get("name"), id_number=body.get("id_number"))
    result = await request.app.state.writer.submit(
        CheckinRequest(citizen_id=who.citizen_id, visitor_id=who.visitor_id,
                       logbook_id=logbook.id, via="proxy", helper_id=citizen.id)
    )
    return JSON(result.checkin, status_code=201 if result.created else 200)


async def visitor_scan(request: Request) -> Response:
    """POST /api/logbooks/{id}/visitor-scans {code}: the registrar scans a visitor's personal
    code (反扫) and checks them in (via "registrar_scan"); 201, or 200 with the same check-in
    within 60 s; 410 code_expired for a code past its minute. Rate limited per registrar
    like proxy check-ins."""
    citizen = await current_citizen(request)
    settings = request.app.state.settings
    await request.app.state.limiter.hit("visitor-scan", citizen.id,
                                        limit=settings.proxy_checkin_rate_per_min)
    body = await read_json(request)
    logbook = await in_session(request, get_logbook, logbook_id=request.path_params["id"],
                               actor=citizen)
    visitor_id = personal_codes.read_code(body.get("code"), settings.secret, now=time.time())
    result = await request.app.state.writer.submit(
        CheckinRequest(citizen_id=visitor_id, logbook_id=logbook.id, via="registrar_scan",
                       helper_id=citizen.id))
    return JSON(result.checkin, status_code=201 if result.created else 200)


async def visitor_checkout(request: Request) -> Response:
    """POST /api/logbooks/{id}/checkins/{checkin_id}/checkout: a registrar checks a visitor
    out (the visitor left without 离场)."""
    citizen = await current_citizen(request)
    logbook = await in_session(request, get_logbook, logbook_id=request.path_params["id"],
                               actor=citizen)

    def write(conn):
        answer, events = checkout_visitor(conn, logbook_id=logbook.id,
                                          checkin_id=request.path_params["checkin_id"],
                                          now=utcnow())
        return answer, checkout_messages(events)

    return JSON(await write_then_publish(request, write, notices=False))


routes = [
    Route("/api/venues", venues_create, methods=["POST"]),
    Route("/api/venues", venues_mine, methods=["GET"]),
    Route("/api/venues/{id:int}", venue_get, methods=["GET"]),
    Route("/api/venues/{id:int}/registrars", registrars_add, methods=["POST"]),
    Route("/api/venues/{id:int}/registrars", registrars_list, methods=["GET"]),
    Route("/api/venues/{id:int}/registrars/{citizen_id:int}", registrars_remove,
          methods=["DELETE"]),
    Route("/api/me/invitations", my_invitations_get, methods=["GET"]),
    Route("/api/invitations/{id:int}/accept", invitation_accept, methods=["POST"]),
    Route("/api/invitations/{id:int}/decline", invitation_decline, methods=["POST"]),
    Route("/api/venues/{id:int}/logbooks", logbooks_create, methods=["POST"]),
    Route("/api/venues/{id:int}/logbooks", logbooks_list, methods=["GET"]),
    Route("/api/logbooks/{id:int}", logbook_get, methods=["GET"]),
    Route("/api/logbooks/{id:int}", logbook_delete, methods=["DELETE"]),
    Route("/api/logbooks/{id:int}/checkins", checkins_list, methods=["GET"]),
    Route("/api/logbooks/{id:int}/export.{fmt:str}", export, methods=["GET"]),
    Route("/api/logbooks/{id:int}/proxy-checkins", proxy_checkin, methods=["POST"]),
    Route("/api/logbooks/{id:int}/visitor-scans", visitor_scan, methods=["POST"]),
    Route("/api/logbooks/{id:int}/checkins/{checkin_id:int}/checkout", visitor_checkout,
          methods=["POST"]),
]
