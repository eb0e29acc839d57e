"""The registrar's console: my venues and opening one (/console), a venue's page with its
logbooks, co-registrars and proxy check-in (/venues/{id}), the live arrivals page, the
printable poster, the entrance display whose QR code rotates every 30 s, and the QR images.

Every page here is for the venue's registrars only (web.pages.guarded: sign-in redirect,
403 and 404 pages). The forms post to the public API from web/static/console.js.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import case, func
from sqlalchemy import select as core_select
from sqlmodel import Session, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from models import rotating
from models.crowding import venue_crowding
from models.errors import LogbookUnavailable, NotFound
from models.guidance import status_guide
from models.registrars import venue_registrars
from models.status import Status
from models.tables import Checkin, Citizen, Logbook, utcnow
from models.timeutil import BEIJING, iso
from models.venues import (
    get_logbook,
    get_venue,
    registrar_venues,
    require_registrar,
    short_code,
)
from web.auth import authenticate, current_citizen
from web.common import in_session
from web.pages import guarded, login_url, render
from web.qr import qr_png, qr_svg
from web.responses import JSON

LIVE_BACKFILL = 200  # arrivals a freshly opened live page shows from earlier today

DISTRICTS = [  # Beijing's sixteen districts, as venues name them
    ("东城区", "Dongcheng"), ("西城区", "Xicheng"), ("朝阳区", "Chaoyang"), ("海淀区", "Haidian"),
    ("丰台区", "Fengtai"), ("石景山区", "Shijingshan"), ("门头沟区", "Mentougou"),
    ("房山区", "Fangshan"), ("通州区", "Tongzhou"), ("顺义区", "Shunyi"), ("昌平区", "Changping"),
    ("大兴区", "Daxing"), ("怀柔区", "Huairou"), ("平谷区", "Pinggu"), ("密云区", "Miyun"),
    ("延庆区", "Yanqing"),
]
CATEGORIES = ["office", "shop", "restaurant", "medical", "school", "hotel", "transport",
              "culture", "residential", "other"]


def _scan_url(request: Request, code: str) -> str:
    return f"{request.app.state.settings.public_url}/s/{code}"


def _inline_svg(url: str) -> str:
    svg = qr_svg(url).decode()
    return svg[svg.index("<svg"):]  # drop any XML declaration: it is inlined into HTML


# --- my venues ---------------------------------------------------------------------------

def _standing(session: Session, citizen: Citizen) -> dict | None:
    """Why this registrar's logbook requests would be refused now (the pages say so and what
    to do next instead of showing forms): suspended for a violation, or not green (their
    logbooks are revoked). None when nothing stands in the way."""
    from models.violations import active_violation

    violation = active_violation(session, citizen.id)
    if violation is not None:
        return {"kind": "suspended", "reason": violation.reason,
                "since": iso(violation.created_at)[:16].replace("T", " ")}
    if citizen.status != Status.GREEN:
        return {"kind": "revoked", "status": citizen.status}
    return None


def _my_venues(session: Session, citizen: Citizen) -> list[dict]:
    rows = registrar_venues(session, citizen.id)
    counts = dict(session.exec(
        select(Logbook.venue_id, func.count()).where(
            Logbook.venue_id.in_([v.id for v, _ in rows]), Logbook.state != "deleted")
        .group_by(Logbook.venue_id)
    ).all()) if rows else {}
    return [{"venue": v, "role": role, "logbooks": counts.get(v.id, 0)} for v, role in rows]


async def console(request: Request) -> Response:
    """GET /console: the venues where I am a registrar, and the form to open one."""
    principal = await authenticate(request)
    if principal is not None and principal.official:
        return RedirectResponse("/", status_code=303)  # officials have their own console

    def load(session: Session, citizen: Citizen):
        return citizen, _my_venues(session, citizen), _standing(session, citizen)

    result = await guarded(request, load, "venue")
    if isinstance(result, Response):
        return result
    principal, (citizen, venues, standing) = result
    return render(request, "console.html", {
        "venues": venues, "green": citizen.status == Status.GREEN, "standing": standing,
        "districts": DISTRICTS, "categories": CATEGORIES,
    }, principal=principal)


# --- one venue ---------------------------------------------------------------------------

async def venue_page(request: Request) -> Response:
    """GET /venues/{id}: logbooks (poster, entrance display, exports, delete), registrars,
    proxy check-in and today's counts."""
    venue_id = request.path_params["id"]

    def load(session: Session, citizen: Citizen):
        duty = require_registrar(session, venue_id, citizen.id)
        venue = get_venue(session, venue_id)
        books = session.exec(
            select(Logbook).where(Logbook.venue_id == venue_id, Logbook.state != "deleted")
            .order_by(Logbook.id)
        ).all()
        return (citizen, duty.role, venue, list(books),
                venue_registrars(session, venue_id=venue_id, actor=citizen),
                live_snapshot(session, venue_id), _standing(session, citizen))

    result = await guarded(request, load, "venue")
    if isinstance(result, Response):
        return result
    principal, (citizen, role, venue, books, registrars, snapshot, standing) = result
    return render(request, "venue.html", {
        "venue": venue, "role": role, "me": citizen.id, "logbooks": books, "standing": standing,
        "registrars": registrars["items"], "invitations": registrars["invitations"],
        "snapshot": snapshot, "green": citizen.status == Status.GREEN,
        "config": {"venue_id": venue.id, "owner": role == "owner"},
    }, principal=principal)


# --- poster, entrance display, QR images -------------------------------------------------

def _logbook_and_venue(request: Request):
    def load(session: Session, citizen: Citizen):
        logbook = get_logbook(session, logbook_id=request.path_params["id"], actor=citizen)
        if logbook.state == "deleted":
            raise NotFound("登记簿已删除 / logbook deleted")
        return logbook, get_venue(session, logbook.venue_id)

    return load


async def poster(request: Request) -> Response:
    """GET /logbooks/{id}/poster: the printable A4 poster (registrars of the venue only)."""
    result = await guarded(request, _logbook_and_venue(request), "logbook")
    if isinstance(result, Response):
        return result
    principal, (logbook, venue) = result
    url = _scan_url(request, logbook.code)
    return render(request, "poster.html", {
        "logbook": logbook, "venue": venue, "scan_url": url, "short_code": short_code(logbook),
        "qr": _inline_svg(url)}, principal=principal)


def rotating_payload(request: Request, logbook: Logbook) -> dict:
    """The code an entrance display shows now, its QR code and when to fetch the next."""
    now = time.time()
    code = rotating.current(logbook.code, request.app.state.settings.secret, now)
    url = _scan_url(request, code.code)
    return {
        "logbook_id": logbook.id,
        "code": code.code,
        "scan_url": url,
        "qr_svg": _inline_svg(url),
        "window": code.window,
        "period": rotating.WINDOW_SECONDS,
        "grace": rotating.GRACE_SECONDS,
        "expires_at": iso(datetime.fromtimestamp(code.expires_at, UTC)),
        "expires_in": round(code.expires_at - now, 3),
    }


async def display(request: Request) -> Response:
    """GET /logbooks/{id}/display: the entrance screen; its QR code changes every 30 s."""
    result = await guarded(request, _logbook_and_venue(request), "logbook")
    if isinstance(result, Response):
        return result
    principal, (logbook, venue) = result
    current = rotating_payload(request, logbook) if logbook.state == "active" else None
    return render(request, "display.html", {
        "logbook": logbook, "venue": venue, "current": current,
        "config": {"logbook_id": logbook.id, "current": current, "state": logbook.state},
    }, principal=principal)


async def rotating_code(request: Request) -> Response:
    """GET /api/logbooks/{id}/rotating-code: the display's current code (registrars)."""
    citizen = await current_citizen(request)
    logbook = await in_session(request, get_logbook, logbook_id=request.path_params["id"],
                               actor=citizen)
    if logbook.state != "active":
        raise LogbookUnavailable(logbook.state, logbook.reason)
    response = JSON(rotating_payload(request, logbook))
    response.headers["Cache-Control"] = "no-store"
    return response


async def logbook_qr(request: Request) -> Response:
    """GET /logbooks/{id}/qr.png|svg: the code as an image (registrars of the venue only)."""
    citizen = await current_citizen(request)
    logbook = await in_session(request, get_logbook, logbook_id=request.path_params["id"],
                               actor=citizen)
    url = _scan_url(request, logbook.code)
    if request.path_params["fmt"] == "png":
        return Response(qr_png(url), media_type="image/png")
    if request.path_params["fmt"] == "svg":
        return Response(qr_svg(url), media_type="image/svg+xml")
    raise NotFound("仅支持 png 与 svg / qr.png or qr.svg")


# --- live arrivals -----------------------------------------------------------------------

def _today_start() -> datetime:
    now = datetime.now(BEIJING)
    return now.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def live_snapshot(session: Session, venue_id: int) -> dict:
    """Where a fresh live page starts: today's counts up to `head`, and the id to replay
    from so that the page shows up to LIVE_BACKFILL of today's arrivals."""
    day_start = _today_start()
    ck = Checkin.__table__.c  # type: ignore[attr-defined]
    conn = session.connection()
    head = conn.execute(
        core_select(func.coalesce(func.max(ck.id), 0)).where(ck.venue_id == venue_id)
    ).scalar_one()
    today = (ck.venue_id == venue_id) & (ck.at >= day_start) & (ck.id <= head)
    total, abnormal = conn.execute(
        core_select(func.count(), func.sum(case((ck.alert, 1), else_=0))).where(today)
    ).one()
    before_today = conn.execute(
        core_select(func.coalesce(func.max(ck.id), 0))
        .where(ck.venue_id == venue_id, ck.at < day_start)
    ).scalar_one()
    cutoff = conn.execute(
        core_select(ck.id).where(today).order_by(ck.id.desc()).offset(LIVE_BACKFILL).limit(1)
    ).scalar()
    return {
        "head": int(head),
        "total": int(total),
        "abnormal": int(abnormal or 0),
        "start_after": int(max(before_today, cutoff or 0)),
        "day": datetime.now(BEIJING).date().isoformat(),
    }


async def live(request: Request) -> Response:
    """GET /venues/{id}/live: the registrar's live arrivals page."""
    venue_id = request.path_params["id"]

    def load(session: Session, citizen: Citizen):
        require_registrar(session, venue_id, citizen.id)
        venue = get_venue(session, venue_id)
        books = session.exec(
            select(Logbook).where(Logbook.venue_id == venue_id).order_by(Logbook.id)
        ).all()
        return venue, list(books), live_snapshot(session, venue_id), venue_crowding(
            session.connection(), venue_id, now=utcnow())

    result = await guarded(request, load, "venue")
    if isinstance(result, Response):
        return result
    principal, (venue, books, snapshot, occupancy) = result
    config = {
        "venue_id": venue.id,
        "logbooks": {str(b.id): {"label": b.label, "state": b.state, "reason": b.reason}
                     for b in books},
        "guide": status_guide(request.app.state.settings.itinerary_url),  # what staff do
        **snapshot,
    }
    return render(request, "live.html", {"venue": venue, "logbooks": books, "config": config,
                                         "snapshot": snapshot, "occupancy": occupancy},
                  principal=principal)


__all__ = ["login_url"]  # re-exported for the templates' helpers

routes = [
    Route("/console", console, methods=["GET"]),
    Route("/venues/{id:int}", venue_page, methods=["GET"]),
    Route("/venues/{id:int}/live", live, methods=["GET"]),
    Route("/logbooks/{id:int}/qr.{fmt:str}", logbook_qr, methods=["GET"]),
    Route("/logbooks/{id:int}/poster", poster, methods=["GET"]),
    Route("/logbooks/{id:int}/display", display, methods=["GET"]),
    Route("/api/logbooks/{id:int}/rotating-code", rotating_code, methods=["GET"]),
]
