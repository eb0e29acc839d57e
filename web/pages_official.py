"""The officials' console (/admin…) and the control room's wallboard (/wallboard).

Server-rendered over the same domain functions as the officials' API. What changes state —
status-change uploads, exposures, violations and their lifting, announcements — and the
audited trace go through that API from the pages' modules (web/static/official/: session
cookie + CSRF header). Officials only: signed out → the sign-in page; a citizen → 403.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import urlencode

from sqlmodel import Session, col, func, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from models.audit import ACTIONS, list_audit
from models.masking import mask_id_number, mask_name
from models.messages import list_messages
from models.notices import announcements
from models.officials import LOWEST_ROLE, Permission
from models.tables import Batch, Citizen, Logbook, Message, Official, Venue, Violation
from models.timeutil import BEIJING
from models.violations import list_violations, violation_public
from web import i18n
from web.auth import Principal, authenticate
from web.common import in_session
from web.pages import login_url, render

_STATIC = Path(__file__).parent / "static" / "official"
PAGE_SIZE = 50
VENUE_CHOICES = 500  # the exposure form's venue suggestions (newest venues)

# (section, path, label key, permission) — the console's navigation, in order. A page needs
# the permission of the API it drives (status changes: ACT, the trace: TRACE, …), checked by
# the API's own rule (models.officials.allows): a role without it gets no link and a 403.
NAV = [
    ("home", "/admin", "adm_nav_home", Permission.READ),
    ("status_changes", "/admin/status-changes", "adm_nav_status_changes", Permission.ACT),
    ("exposures", "/admin/exposures", "adm_nav_exposures", Permission.ACT),
    ("jobs", "/admin/jobs", "adm_nav_jobs", Permission.READ),
    ("trace", "/admin/trace", "adm_nav_trace", Permission.TRACE),
    ("audit", "/admin/audit", "adm_nav_audit", Permission.READ),
    ("violations", "/admin/violations", "adm_nav_violations", Permission.READ),
    ("notices", "/admin/notices", "adm_nav_notices", Permission.READ),
    ("messages", "/admin/messages", "adm_nav_messages", Permission.READ),
    ("wallboard", "/wallboard", "adm_nav_wallboard", Permission.READ),
    ("officials", "/admin/officials", "adm_nav_officials", Permission.MANAGE),
    ("account", "/admin/account", "adm_nav_account", Permission.READ),
]
NEEDS = {section: permission for section, _path, _label, permission in NAV}


def _static_version() -> str:
    """A short hash of the console's static files (the modules import each other with it)."""
    digest = hashlib.sha256()
    for path in sorted(_STATIC.glob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


OFFICIAL_VERSION = _static_version()


def _strings(lang: str) -> dict[str, str]:
    index = i18n.LANGS.index(lang)
    merged = {**i18n.STRINGS, **i18n.CONSOLE_STRINGS}
    return {key: pair[index] for key, pair in merged.items()}


def when(value: str | datetime | None) -> str:
    """A time as officials read it: Beijing, to the second."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(BEIJING).isoformat()
    return value[:19].replace("T", " ")


def page(request: Request, name: str, principal: Principal | None, context: dict | None = None,
         *, section: str = "", status: int = 200) -> Response:
    """Render official/<name> with the console's strings (which the phone pages never carry)."""
    strings = _strings(i18n.lang_of(request))

    def may(permission: str) -> bool:
        return principal is not None and principal.may(Permission(permission))

    nav = [(key, href, label) for key, href, label, needs in NAV if may(needs)]
    return render(request, f"official/{name}", {
        "t": lambda key: strings.get(key, key),
        "js_strings": strings,
        "nav": nav,
        "sections": {key for key, _href, _label in nav},  # the ones this role may open
        "may": may,  # templates leave out the forms of actions the role may not take
        "csrf_token": request.session.get("csrf", "") if "session" in request.scope else "",
        "section": section,
        "official_version": OFFICIAL_VERSION,
        "when": when,
        **(context or {}),
    }, status=status, principal=principal)


async def signed_in_official(request: Request, section: str) -> Principal | Response:
    """The signed-in official whose role may open `section` (NAV), or the response for
    everyone else: the sign-in page when signed out, 403 for a citizen or a lower role."""
    principal = await authenticate(request)
    if principal is None:
        return RedirectResponse(login_url(request), status_code=303)
    if not principal.may(NEEDS[section]):
        return page(request, "forbidden.html", principal,
                    {"needs": LOWEST_ROLE[NEEDS[section]]}, status=403)
    return principal


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name, "")
    return int(raw) if raw.isdigit() and len(raw) <= 9 else None


# --- pages ---------------------------------------------------------------------------------

def official_names(session: Session) -> dict[str, str]:
    """"official:<id>" → "name (#id)": how the pages show who asked for a batch or recorded
    a violation (older rows say "official", the shared token)."""
    return {f"official:{o.id}": f"{o.name} (#{o.id})"
            for o in session.exec(select(Official)).all()}


def _overview(session: Session, district: str | None) -> dict:
    query = select(Batch).order_by(col(Batch.id).desc()).limit(8)
    if district is not None:
        query = query.where(Batch.district == district)
    batches = session.exec(query).all()
    active = session.exec(select(func.count()).select_from(Violation)
                          .where(col(Violation.lifted_at).is_(None))).one()
    messages = session.exec(select(func.count()).select_from(Message)).one()
    return {"batches": list(batches), "active_violations": active, "messages": messages,
            "names": official_names(session)}


async def home(request: Request) -> Response:
    principal = await signed_in_official(request, "home")
    if isinstance(principal, Response):
        return principal
    return page(request, "home.html", principal,
                await in_session(request, _overview, principal.district),
                section="home")


async def status_changes(request: Request) -> Response:
    principal = await signed_in_official(request, "status_changes")
    if isinstance(principal, Response):
        return principal
    return page(request, "status_changes.html", principal, section="status_changes")


def _venue_choices(session: Session) -> list[Venue]:
    return list(session.exec(select(Venue).order_by(col(Venue.id).desc())
                             .limit(VENUE_CHOICES)).all())


async def exposures(request: Request) -> Response:
    principal = await signed_in_official(request, "exposures")
    if isinstance(principal, Response):
        return principal
    venues = await in_session(request, _venue_choices)
    return page(request, "exposures.html", principal, {
        "venues": venues, "venue_id": _int_param(request, "venue_id")}, section="exposures")


async def jobs(request: Request) -> Response:
    principal = await signed_in_official(request, "jobs")
    if isinstance(principal, Response):
        return principal
    before = _int_param(request, "before")

    def load(session: Session) -> tuple[list[Batch], dict]:
        query = select(Batch).order_by(col(Batch.id).desc()).limit(PAGE_SIZE)
        if before is not None:
            query = query.where(col(Batch.id) < before)
        if principal.district is not None:  # a district's officials see its batches
            query = query.where(Batch.district == principal.district)
        return list(session.exec(query).all()), official_names(session)

    batches, names = await in_session(request, load)
    return page(request, "jobs.html", principal, {
        "batches": batches, "names": names,
        "next_before": batches[-1].id if len(batches) == PAGE_SIZE else None,
    }, section="jobs")


async def job(request: Request) -> Response:
    """One job's progress and result (the page polls /api/admin/jobs/{job_id})."""
    principal = await signed_in_official(request, "jobs")
    if isinstance(principal, Response):
        return principal
    job_id = request.path_params["job_id"]

    def load(session: Session) -> tuple[Batch | None, dict]:
        found = session.exec(select(Batch).where(Batch.job_id == job_id)).first()
        return found, official_names(session)

    batch, names = await in_session(request, load) if len(job_id) <= 64 else (None, {})
    if batch is None or (principal.district is not None
                         and batch.district != principal.district):
        return page(request, "not_found.html", principal, section="jobs", status=404)
    return page(request, "job.html", principal, {"batch": batch, "names": names},
                section="jobs")


async def trace(request: Request) -> Response:
    principal = await signed_in_official(request, "trace")
    if isinstance(principal, Response):
        return principal
    return page(request, "trace.html", principal, section="trace")


async def audit(request: Request) -> Response:
    principal = await signed_in_official(request, "audit")
    if isinstance(principal, Response):
        return principal
    params = request.query_params
    action = params.get("action") or None
    if action not in ACTIONS:
        action = None
    shown = {"action": action, "actor_id": _int_param(request, "actor_id"),
             "since": _day(params.get("since")), "until": _day(params.get("until"))}
    filters = {"action": action, "actor_id": shown["actor_id"],
               "since": _day_start(shown["since"]),
               "until": _day_start(shown["until"], next_day=True)}
    items = await in_session(request, list_audit, **filters,
                             before=_int_param(request, "before"), limit=PAGE_SIZE)
    query = urlencode({k: v for k, v in shown.items() if v})
    return page(request, "audit.html", principal, {
        "items": items, "action": action or "", "actions": ACTIONS, "filters": shown,
        "query": f"?{query}" if query else "",
        "next_before": items[-1]["id"] if len(items) == PAGE_SIZE else None,
    }, section="audit")


def _day(value: str | None) -> str | None:
    """A YYYY-MM-DD date from a filter form, or None."""
    if not value or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        return None


def _day_start(day: str | None, *, next_day: bool = False) -> datetime | None:
    """The start of a Beijing day (of the next one for an inclusive end)."""
    if day is None:
        return None
    start = datetime.combine(date.fromisoformat(day), time(), tzinfo=BEIJING)
    return start + timedelta(days=1) if next_day else start


def _violations(session: Session, active: bool | None) -> list[dict]:
    rows = list_violations(session, active=active, limit=PAGE_SIZE * 4)
    ids = {v.citizen_id for v in rows}
    people = {c.id: c for c in session.exec(select(Citizen).where(col(Citizen.id).in_(ids)))}
    suspended = dict(session.exec(
        select(Logbook.created_by, func.count()).where(
            col(Logbook.created_by).in_(ids), Logbook.state == "suspended")
        .group_by(Logbook.created_by)).all()) if ids else {}
    out = []
    for v in rows:
        person = people.get(v.citizen_id)
        out.append({**violation_public(v),
                    "name_masked": mask_name(person.name) if person else "",
                    "id_masked": mask_id_number(person.id_number) if person else "",
                    "suspended": suspended.get(v.citizen_id, 0)})
    return out


async def violations(request: Request) -> Response:
    principal = await signed_in_official(request, "violations")
    if isinstance(principal, Response):
        return principal
    show = request.query_params.get("show", "active")
    active = {"active": True, "lifted": False}.get(show)
    items = await in_session(request, _violations, active)
    names = await in_session(request, official_names)
    return page(request, "violations.html", principal, {
        "items": items, "names": names, "show": show if show in ("active", "lifted") else "all",
    }, section="violations")


async def notices(request: Request) -> Response:
    principal = await signed_in_official(request, "notices")
    if isinstance(principal, Response):
        return principal

    def load(session: Session) -> list[dict]:
        return announcements(session.connection(), limit=PAGE_SIZE)

    return page(request, "notices.html", principal, {"items": await in_session(request, load)},
                section="notices")


async def messages(request: Request) -> Response:
    principal = await signed_in_official(request, "messages")
    if isinstance(principal, Response):
        return principal
    raw = request.query_params.get("handled", "")
    handled = {"true": True, "false": False}.get(raw)
    items = await in_session(request, list_messages, before=_int_param(request, "before"),
                             limit=PAGE_SIZE, handled=handled)
    return page(request, "messages.html", principal, {
        "items": items, "next_before": items[-1]["id"] if len(items) == PAGE_SIZE else None,
        "handled_filter": raw if handled is not None else "",
    }, section="messages")


async def wallboard(request: Request) -> Response:
    """The control room's full-screen board, live from /ws/wallboard."""
    principal = await signed_in_official(request, "wallboard")
    if isinstance(principal, Response):
        return principal
    from web.pages_console import DISTRICTS

    return page(request, "wallboard.html", principal, {"districts": DISTRICTS},
                section="wallboard")


routes = [
    Route("/admin", home, methods=["GET"]),
    Route("/admin/status-changes", status_changes, methods=["GET"]),
    Route("/admin/exposures", exposures, methods=["GET"]),
    Route("/admin/jobs", jobs, methods=["GET"]),
    Route("/admin/jobs/{job_id:str}", job, methods=["GET"]),
    Route("/admin/trace", trace, methods=["GET"]),
    Route("/admin/audit", audit, methods=["GET"]),
    Route("/admin/violations", violations, methods=["GET"]),
    Route("/admin/notices", notices, methods=["GET"]),
    Route("/admin/messages", messages, methods=["GET"]),
    Route("/wallboard", wallboard, methods=["GET"]),
]
