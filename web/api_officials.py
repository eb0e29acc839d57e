"""Officials' accounts (admins only): add, list, disable, rotate a token.

A district admin manages their own district's officials only (and cannot make a city-level
one). Disabling an account or rotating its token ends its browser sessions and open
WebSockets at once, on every web process (web/sessions.py). Every change is audited.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models import audit
from models.audit import record
from models.errors import Forbidden
from models.officials import (
    Permission,
    create_official,
    disable_official,
    get_official,
    list_officials,
    official_public,
    rotate_token,
)
from models.tables import Official
from web.api_admin import client_detail
from web.auth import Principal, require_official
from web.common import in_session
from web.responses import JSON, read_json


def _in_reach(principal: Principal, official: Official) -> None:
    if principal.district is not None and official.district != principal.district:
        raise Forbidden(f"仅限管理本辖区（{principal.district}）的账户 / you manage your "
                        f"district's ({principal.district}) officials only")


def _answer(official: Official, token: str | None = None) -> dict:
    out = official_public(official)
    if token is not None:
        out["token"] = token  # shown once: only its hash is kept
    return out


async def officials_create(request: Request) -> Response:
    principal = await require_official(request, Permission.MANAGE)
    official, token = await add(request, principal, await read_json(request))
    return JSON(_answer(official, token), status_code=201)


async def add(request: Request, principal: Principal, body: dict) -> tuple[Official, str]:
    """Add an official (the API and the console's officials page): audited."""
    district = body.get("district") or None
    if principal.district is not None and district != principal.district:
        raise Forbidden(f"只能添加本辖区（{principal.district}）的账户 / you may add officials of "
                        f"your district ({principal.district}) only")

    def create(session):
        official, token = create_official(session, name=body.get("name"),
                                          role=body.get("role"), district=district,
                                          login=body.get("login"), created_by=principal.id)
        record(session, actor=principal.audit_actor, action=audit.OFFICIAL_CREATE,
               target=f"official:{official.id}",
               detail={"name": official.name, "role": official.role,
                       "district": official.district, **client_detail(request)})
        session.commit()
        return official, token

    return await in_session(request, create)


async def officials_list(request: Request) -> Response:
    principal = await require_official(request, Permission.MANAGE)
    items = await in_session(request, list_officials)
    return JSON({"items": [official_public(o) for o in items
                           if principal.district is None or o.district == principal.district]})


async def officials_delete(request: Request) -> Response:
    """DELETE /api/admin/officials/{id}: disable the account (kept for the audit's sake);
    its token and sessions stop at once."""
    principal = await require_official(request, Permission.MANAGE)
    await disable(request, principal, request.path_params["id"])
    return Response(status_code=204)


async def disable(request: Request, principal: Principal, official_id: int) -> Official:
    """Disable an account and end its sessions at once: audited."""

    def write(session):
        _in_reach(principal, get_official(session, official_id))
        was_active = get_official(session, official_id).active
        official = disable_official(session, official_id=official_id, by=principal.id)
        if was_active:
            record(session, actor=principal.audit_actor, action=audit.OFFICIAL_DISABLE,
                   target=f"official:{official.id}",
                   detail={"name": official.name, **client_detail(request)})
            session.commit()
        return official

    official = await in_session(request, write)
    await request.app.state.sessions.end_all("official", official.id)
    return official


async def official_token(request: Request) -> Response:
    """POST /api/admin/officials/{id}/token: a new token (shown once); the old one and the
    official's sessions stop at once."""
    principal = await require_official(request, Permission.MANAGE)
    official, token = await rotate(request, principal, request.path_params["id"])
    return JSON(_answer(official, token))


async def rotate(request: Request, principal: Principal, official_id: int
                 ) -> tuple[Official, str]:
    """A new token (shown once); the old one and the official's sessions end: audited."""

    def write(session):
        _in_reach(principal, get_official(session, official_id))
        official, token = rotate_token(session, official_id=official_id)
        record(session, actor=principal.audit_actor, action=audit.OFFICIAL_TOKEN,
               target=f"official:{official.id}",
               detail={"name": official.name, **client_detail(request)})
        session.commit()
        return official, token

    official, token = await in_session(request, write)
    await request.app.state.sessions.end_all("official", official.id)
    return official, token


async def whoami(request: Request) -> Response:
    """GET /api/admin/me: the signed-in official (any role)."""
    principal = await require_official(request, Permission.READ)
    official = await in_session(request, get_official, principal.id)
    return JSON(official_public(official))


routes = [
    Route("/api/admin/officials", officials_create, methods=["POST"]),
    Route("/api/admin/officials", officials_list, methods=["GET"]),
    Route("/api/admin/officials/{id:int}", officials_delete, methods=["DELETE"]),
    Route("/api/admin/officials/{id:int}/token", official_token, methods=["POST"]),
    Route("/api/admin/me", whoami, methods=["GET"]),
]
