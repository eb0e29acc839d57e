"""Server-rendered pages for everyone: home (a citizen's status card, notices, 他人代查, 留言),
sign-in (SMS code, or a token), the page behind a QR code; and what every page shares
(rendering in the caller's language, the error pages, the registrar-page guard). The
registrar's console is web/pages_console.py. The pages' JavaScript (web/static/) talks to the
public API and the feeds."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from urllib.parse import quote

from sqlmodel import Session, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from models import audit, rotating
from models.audit import my_traces
from models.citizens import citizen_card
from models.errors import CodeExpired, Forbidden, NotFound, TooManyRequests, UnknownCode
from models.guidance import status_guide
from models.itinerary import latest_check
from models.masking import mask_id_number, mask_name
from models.notices import announcements, notices_head
from models.tables import Citizen, Logbook, Venue
from web import i18n
from web.auth import Principal, Unauthenticated, authenticate, forget_principal, start_session
from web.common import in_session
from web.responses import JSON
from web.sessions import SESSION_ID_KEY

_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=_HERE / "templates")
MY_TRACES = 20  # the latest looks at my record the home page lists (all: /api/me/traces)
NOTICE_BAR = 3  # announcements the 通知栏 shows when the page opens (newer ones arrive live)


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
                          for name in ("common.js", "csrf.js", "idnumber.js", "offline.js",
                                       "photo.js", "stay.js")}}


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

def _home_data(session: Session, citizen_id: int) -> dict:
    from models.registrars import my_invitations

    conn = session.connection()
    return {"notices": announcements(conn, limit=NOTICE_BAR),
            "notice_head": notices_head(conn, citizen_id=citizen_id),
            "itinerary": latest_check(conn, citizen_id=citizen_id),
            "invitations": my_invitations(session, citizen_id=citizen_id),
            "traces": my_traces(session, citizen_id=citizen_id, limit=MY_TRACES)}


async def home(request: Request) -> Response:
    """GET /: a citizen's status card, the 通知栏, 他人代查, 留言栏 and their venues."""
    from web.api_citizen import card

    principal, citizen = await _page_citizen(request)
    context: dict = {"citizen": citizen}
    if citizen is not None:
        context.update(await in_session(request, _home_data, citizen.id))
        context["card"] = card(citizen, request.app.state.settings.itinerary_url)
        context["guide"] = status_guide(request.app.state.settings.itinerary_url)  # 他人代查
    return render(request, "home.html", context, principal=principal)


async def login_page(request: Request) -> Response:
    principal = await authenticate(request)
    return render(request, "login.html", {
        "next": safe_next(request.query_params.get("next", "/")),
        "failed": request.query_params.get("error") == "1",
    }, principal=principal)


TOKEN_TRIES_FROM_ONE_ADDRESS = 30  # token sign-ins per address in 10 minutes


async def login(request: Request) -> Response:
    """POST a bearer token (form field `token`) to get the browser session cookie. Rate
    limited per address; a failure is audited (never the token)."""
    from web.auth import principal_for_token

    form = await request.form()
    token = str(form.get("token", "")).strip()
    next_url = safe_next(form.get("next") or "/")
    address = request.client.host if request.client else "-"
    try:
        await request.app.state.limiter.hit("token-sign-in", address,
                                            limit=TOKEN_TRIES_FROM_ONE_ADDRESS, window=600)
    except TooManyRequests as refused:
        return _login_again(request, next_url, "rate_limited", status=429,
                            retry_after=refused.retry_after)
    principal = await principal_for_token(request.app.state, token) if token else None
    if principal is None:
        await in_session(request, _failed_sign_in, "token", address,
                         request.headers.get("user-agent", ""))
        return RedirectResponse("/login?error=1&next=" + quote(next_url, safe=""),
                                status_code=303)
    await start_session(request, principal)
    return RedirectResponse(next_url, status_code=303)


def _failed_sign_in(session: Session, method: str, address: str, agent: str) -> None:
    audit.record(session, actor=audit.SYSTEM, action=audit.SIGN_IN_FAILED, target=method,
                 detail={"method": method, "ip": address, "user_agent": agent[:200]})
    session.commit()


def _login_again(request: Request, next_url: str, problem: str, *, status: int,
                 retry_after: int | None = None, login: object = None) -> Response:
    """The sign-in page again with the officials' form's problem; the form (the page's last)
    takes the focus, so its message is in view, with the login name kept."""
    response = render(request, "login.html", {
        "next": next_url, "failed": False, "official_problem": problem,
        "official_login": login.strip()[:64] if isinstance(login, str) else ""}, status=status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


async def login_official(request: Request) -> Response:
    """POST /login/official (form: login, password, code): an official signs in with their
    password and authenticator code."""
    from web.api_auth import official_sign_in

    form = await request.form()
    next_url = safe_next(form.get("next") or "/admin")
    try:
        await official_sign_in(request, form.get("login"), form.get("password"),
                               form.get("code"))
    except TooManyRequests as refused:
        return _login_again(request, next_url, "rate_limited", status=429,
                            retry_after=refused.retry_after, login=form.get("login"))
    except Unauthenticated:
        return _login_again(request, next_url, "failed", status=401, login=form.get("login"))
    return RedirectResponse(next_url, status_code=303)


async def logout(request: Request) -> Response:
    """Sign-out ends the session on the server: the old cookie answers 401 afterwards, on
    every process, and the session's open WebSockets close (4401)."""
    sid = request.session.get(SESSION_ID_KEY)
    if isinstance(sid, str):
        await request.app.state.sessions.end(sid)
    request.session.clear()
    forget_principal(request)
    return RedirectResponse("/", status_code=303)


# --- the page behind a logbook's QR code ---------------------------------------------------

def _logbook_by_code(session: Session, code: str) -> tuple[Logbook, Venue] | None:
    row = session.exec(
        select(Logbook, Venue).join(Venue, Venue.id == Logbook.venue_id)
        .where(Logbook.code == code)
    ).first()
    return (row[0], row[1]) if row else None


def _plain_code(request: Request, code: str) -> tuple[str | None, bool]:
    """(the logbook code a scanned code names, whether it is an expired rotating code)."""
    if len(code) > 200:
        return None, False
    if not rotating.is_rotating(code):
        return code, False
    try:
        return rotating.resolve(code, request.app.state.settings.secret, now=time.time()), False
    except CodeExpired:  # authentic but old: the page names the logbook and says so
        return rotating.open_code(code, request.app.state.settings.secret)[0], True
    except UnknownCode:
        return None, False


async def scan_page(request: Request) -> Response:
    """GET /s/{code}: the venue and logbook, and one big button that checks the caller in.
    {code} is a poster's fixed code or an entrance display's rotating one."""
    code = request.path_params["code"]
    principal, citizen = await _page_citizen(request)
    plain, expired = _plain_code(request, code)
    found = await in_session(request, _logbook_by_code, plain) if plain else None
    if found is None:
        return render(request, "scan.html", {"invalid": True}, status=404, principal=principal)
    logbook, venue = found
    photo = name_masked = id_masked = minor_label = None
    if citizen is not None:
        from web.api_photo import photo_url

        photo = photo_url(citizen)
        name_masked, id_masked = mask_name(citizen.name), mask_id_number(citizen.id_number)
        minor_label = citizen_card(citizen)["photo_label"]
    usable = logbook.state == "active" and not expired
    return render(request, "scan.html", {
        "invalid": False,
        "expired": expired,
        "code": code,
        "logbook": logbook,
        "venue": venue,
        "citizen": citizen,
        "photo_url": photo,
        "name_masked": name_masked,  # for the card of a scan queued offline
        "id_masked": id_masked,
        "minor_label": minor_label,
        # What each status the scan may answer means at the door (the status guide).
        "scan_config": {"guide": status_guide(request.app.state.settings.itinerary_url)},
    }, status=200 if usable else 410, principal=principal)


# --- what the registrar pages share ------------------------------------------------------

async def registrar_page(request: Request, load) -> tuple[Principal | None, object]:
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


async def guarded(request: Request, load, what: str):
    """The loaded value, or the HTML response for signed-out / forbidden / missing."""
    try:
        return await registrar_page(request, load)
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


async def _citizen_page(request: Request, template: str) -> Response:
    """A page for the signed-in citizen (its module loads its data): sign in first."""
    principal, citizen = await _page_citizen(request)
    if principal is None:
        return RedirectResponse(login_url(request), status_code=303)
    if citizen is None:
        return error_page(request, 403, "forbidden_title", "official_cannot_scan",
                          principal=principal)
    return render(request, template, {}, principal=principal)


async def visits_page(request: Request) -> Response:
    """GET /me/visits: my visits of the retention period (GET /api/me/checkins), newest
    first, with 离场 for a stay still open."""
    return await _citizen_page(request, "visits.html")


async def code_page(request: Request) -> Response:
    """GET /me/code: my personal code (反扫) as a QR code that changes every half minute, and
    the check-in once a registrar has scanned it."""
    return await _citizen_page(request, "mycode.html")


async def household_page(request: Request) -> Response:
    """GET /me/household: my dependants (add by name and ID number, remove)."""
    return await _citizen_page(request, "household.html")


async def offline_scan_page(request: Request) -> Response:
    """GET /offline/scan: the scan page the service worker keeps for a phone without signal
    (it answers /s/{code} with it when the page cannot be fetched)."""
    principal = await authenticate(request)
    return render(request, "scan_offline.html", {}, principal=principal)


_SW = _HERE / "static" / "sw.js"
MANIFEST = {
    "name": "扫码登记 Scanbook", "short_name": "扫码登记", "start_url": "/", "scope": "/",
    "display": "standalone", "background_color": "#ffffff", "theme_color": "#0b57d0",
    "lang": "zh-CN", "icons": [{"src": "/static/icon.svg", "sizes": "any",
                                "type": "image/svg+xml", "purpose": "any"}],
}


async def service_worker(request: Request) -> Response:
    """GET /sw.js: the service worker, from the site's root so that its scope is "/"."""
    return Response(_SW.read_bytes(), media_type="text/javascript",
                    headers={"Cache-Control": "no-cache"})


async def manifest(request: Request) -> Response:
    """GET /manifest.webmanifest: the phone pages are installable."""
    return JSON(MANIFEST, media_type="application/manifest+json")


routes = [
    Route("/", home, methods=["GET"]),
    Route("/me/household", household_page, methods=["GET"]),
    Route("/offline/scan", offline_scan_page, methods=["GET"]),
    Route("/sw.js", service_worker, methods=["GET"]),
    Route("/manifest.webmanifest", manifest, methods=["GET"]),
    Route("/me/visits", visits_page, methods=["GET"]),
    Route("/me/code", code_page, methods=["GET"]),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/login/official", login_official, methods=["POST"]),
    Route("/logout", logout, methods=["GET", "POST"]),
    Route("/s/{code:str}", scan_page, methods=["GET"]),
]
