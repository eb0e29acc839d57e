"""Server-rendered pages: home, sign-in, the phone page behind a QR code, posters, the
registrar's live page, and the QR images. The pages call the same domain functions as the API;
their JavaScript (web/static/) talks to the public API and the venue feed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import case, func
from sqlalchemy import select as core_select
from sqlmodel import Session, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from models.errors import Forbidden, NotFound
from models.tables import Checkin, Citizen, Logbook, Venue
from models.timeutil import BEIJING
from models.venues import get_logbook, get_venue, require_registrar
from web import i18n
from web.app import in_session
from web.auth import Principal, Unauthenticated, authenticate
from web.qr import qr_png, qr_svg

_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=_HERE / "templates")

LIVE_BACKFILL = 200  # arrivals a freshly opened live page shows from earlier today


def _static_version() -> str:
    """A short hash of the static files, so a deploy never serves yesterday's JavaScript."""
    digest = hashlib.sha256()
    for path in sorted((_HERE / "static").glob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


STATIC_VERSION = _static_version()
# Modules the page modules import: the import map adds the version to their URLs too.
IMPORT_MAP = {"imports": {f"/static/{name}": f"/static/{name}?v={STATIC_VERSION}"
                          for name in ("common.js", "csrf.js")}}


def safe_next(value: object) -> str:
    """A same-site path to return to after signing in; anything else goes home."""
    if not isinstance(value, str) or len(value) > 1000:
        return "/"
    if not value.startswith("/") or value.startswith(("//", "/\\")) or "\n" in value:
        return "/"
    return value


def _here(request: Request) -> str:
    path = request.url.path
    query = "&".join(f"{k}={quote(v)}" for k, v in request.query_params.multi_items()
                     if k != "lang")
    return f"{path}?{query}" if query else path


def login_url(request: Request) -> str:
    return "/login?next=" + quote(_here(request), safe="")


def render(request: Request, name: str, context: dict | None = None, *, status: int = 200,
           principal: Principal | None = None) -> Response:
    """Render a page in the caller's language; remembers a ?lang= choice in its cookie."""
    lang = i18n.lang_of(request)
    other = "en" if lang == "zh" else "zh"
    here = _here(request)
    ctx = {
        "lang": lang,
        "html_lang": "zh-CN" if lang == "zh" else "en",
        "t": i18n.translator(lang),
        "js_strings": i18n.js_strings(lang),
        "lang_url": f"{here}{'&' if '?' in here else '?'}lang={other}",
        "principal": principal,
        "static_version": STATIC_VERSION,
        "import_map": IMPORT_MAP,
        "login_url": login_url(request),
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, ctx, status_code=status)
    # Pages depend on who is signed in; never let a shared cache keep one.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    i18n.remember(request, response)
    return response


def error_page(request: Request, status: int, title_key: str, message_key: str, *,
               principal: Principal | None = None, sign_in: bool = False) -> Response:
    return render(request, "error.html", {"title_key": title_key, "message_key": message_key,
                                          "sign_in": sign_in}, status=status,
                  principal=principal)


async def _page_citizen(request: Request) -> tuple[Principal | None, Citizen | None]:
    principal = await authenticate(request)
    if principal is None or principal.official:
        return principal, None

    def load(session: Session) -> Citizen | None:
        return session.get(Citizen, principal.citizen_id)

    citizen = await in_session(request, load)
    # A session naming a citizen who no longer exists is as good as signed out.
    return (principal, citizen) if citizen is not None else (None, None)


# --- home, sign-in, sign-out -------------------------------------------------------------

async def home(request: Request) -> Response:
    principal = await authenticate(request)
    return render(request, "home.html", principal=principal)


async def login_page(request: Request) -> Response:
    principal = await authenticate(request)
    return render(request, "login.html", {
        "next": safe_next(request.query_params.get("next", "/")),
        "failed": request.query_params.get("error") == "1",
    }, principal=principal)


async def login(request: Request) -> Response:
    """POST a bearer token (form field `token`) to get the browser session cookie."""
    from web.auth import principal_for_token

    form = await request.form()
    token = str(form.get("token", "")).strip()
    next_url = safe_next(form.get("next") or "/")
    principal = await principal_for_token(request.app.state, token) if token else None
    if principal is None:
        return RedirectResponse("/login?error=1&next=" + quote(next_url, safe=""),
                                status_code=303)
    request.session.clear()
    if principal.official:
        request.session["official"] = True
    else:
        request.session["citizen_id"] = principal.citizen_id
    return RedirectResponse(next_url, status_code=303)


async def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/", status_code=303)


# --- the page behind a logbook's QR code ---------------------------------------------------

def _logbook_by_code(session: Session, code: str) -> tuple[Logbook, Venue] | None:
    row = session.exec(
        select(Logbook, Venue).join(Venue, Venue.id == Logbook.venue_id)
        .where(Logbook.code == code)
    ).first()
    return (row[0], row[1]) if row else None


async def scan_page(request: Request) -> Response:
    """GET /s/{code}: the venue and logbook, and one big button that checks the caller in."""
    code = request.path_params["code"]
    principal, citizen = await _page_citizen(request)
    found = await in_session(request, _logbook_by_code, code) if len(code) <= 200 else None
    if found is None:
        return render(request, "scan.html", {"invalid": True}, status=404, principal=principal)
    logbook, venue = found
    return render(request, "scan.html", {
        "invalid": False,
        "code": code,
        "logbook": logbook,
        "venue": venue,
        "citizen": citizen,
    }, status=200 if logbook.state == "active" else 410, principal=principal)


# --- registrar pages: poster, live arrivals, QR images -----------------------------------

async def _registrar_page(request: Request, load) -> tuple[Principal | None, object]:
    """Run `load(session, citizen)` for a signed-in citizen; raises for the error pages."""
    principal = await authenticate(request)
    if principal is None:
        raise Unauthenticated("请先登录 / authentication required")
    if principal.official:
        raise Forbidden("仅限居民账户 / citizens only")

    def call(session: Session):
        citizen = session.get(Citizen, principal.citizen_id)
        if citizen is None:
            raise Unauthenticated("账户不存在 / account not found")
        return load(session, citizen)

    return principal, await in_session(request, call)


async def _guarded(request: Request, load, what: str):
    """The loaded value, or the HTML response for signed-out / forbidden / missing."""
    try:
        return await _registrar_page(request, load)
    except Unauthenticated:
        return RedirectResponse(login_url(request), status_code=303)
    except Forbidden:
        principal = await authenticate(request)
        return error_page(request, 403, "forbidden_title", "forbidden_registrar",
                          principal=principal)
    except NotFound:
        principal = await authenticate(request)
        return error_page(request, 404, "not_found_title", f"not_found_{what}",
                          principal=principal)


def _scan_url(request: Request, logbook: Logbook) -> str:
    return f"{request.app.state.settings.public_url}/s/{logbook.code}"


async def poster(request: Request) -> Response:
    """GET /logbooks/{id}/poster: the printable A4 poster (registrars of the venue only)."""

    def load(session: Session, citizen: Citizen):
        logbook = get_logbook(session, logbook_id=request.path_params["id"], actor=citizen)
        return logbook, get_venue(session, logbook.venue_id)

    result = await _guarded(request, load, "logbook")
    if isinstance(result, Response):
        return result
    principal, (logbook, venue) = result
    svg = qr_svg(_scan_url(request, logbook)).decode()
    svg = svg[svg.index("<svg"):]  # drop any XML declaration: it is inlined into HTML
    return render(request, "poster.html", {"logbook": logbook, "venue": venue, "qr": svg},
                  principal=principal)


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
        return venue, list(books), live_snapshot(session, venue_id)

    result = await _guarded(request, load, "venue")
    if isinstance(result, Response):
        return result
    principal, (venue, books, snapshot) = result
    config = {
        "venue_id": venue.id,
        "logbooks": {str(b.id): {"label": b.label, "state": b.state, "reason": b.reason}
                     for b in books},
        **snapshot,
    }
    return render(request, "live.html", {"venue": venue, "logbooks": books, "config": config,
                                         "snapshot": snapshot}, principal=principal)


async def logbook_qr(request: Request) -> Response:
    """GET /logbooks/{id}/qr.png|svg: the code as an image (registrars of the venue only)."""
    from web.api_registrar import _citizen

    citizen = await _citizen(request)
    logbook = await in_session(request, get_logbook, logbook_id=request.path_params["id"],
                               actor=citizen)
    url = _scan_url(request, logbook)
    if request.path_params["fmt"] == "png":
        return Response(qr_png(url), media_type="image/png")
    if request.path_params["fmt"] == "svg":
        return Response(qr_svg(url), media_type="image/svg+xml")
    raise NotFound("仅支持 png 与 svg / qr.png or qr.svg")


routes = [
    Route("/", home, methods=["GET"]),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["GET", "POST"]),
    Route("/s/{code:str}", scan_page, methods=["GET"]),
    Route("/logbooks/{id:int}/qr.{fmt:str}", logbook_qr, methods=["GET"]),
    Route("/logbooks/{id:int}/poster", poster, methods=["GET"]),
    Route("/venues/{id:int}/live", live, methods=["GET"]),
]
