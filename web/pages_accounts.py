"""The console's officials page (admins: list, add, disable, rotate a token) and each
official's own account page (set a password and enrol an authenticator, its QR code shown
once). Server-rendered forms with the session's CSRF token; the same functions as the
officials' API (web/api_officials.py), so every change is audited the same way."""

from __future__ import annotations

import base64

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from models import audit
from models.errors import DomainError
from models.officials import (
    confirm_totp,
    get_official,
    list_officials,
    official_public,
    set_credentials,
)
from web.api_admin import client_detail
from web.api_officials import add, disable, rotate
from web.auth import Principal
from web.common import in_session
from web.pages_official import page, signed_in_official
from web.qr import qr_svg

ROLES = ("viewer", "operator", "tracer", "admin")


async def _admin(request: Request) -> Principal | Response:
    return await signed_in_official(request, "officials")


async def _officials_page(request: Request, principal: Principal, *, shown: dict | None = None,
                          error: str | None = None, status: int = 200) -> Response:
    items = [official_public(o) for o in await in_session(request, list_officials)
             if principal.district is None or o.district == principal.district]
    return page(request, "officials.html", principal, {
        "items": items, "roles": ROLES, "shown": shown, "error": error,
    }, section="officials", status=status)


async def officials(request: Request) -> Response:
    principal = await _admin(request)
    if isinstance(principal, Response):
        return principal
    return await _officials_page(request, principal)


async def officials_add(request: Request) -> Response:
    """The add form: the new official's token is shown on the page once."""
    principal = await _admin(request)
    if isinstance(principal, Response):
        return principal
    form = await request.form()
    body = {key: (str(form.get(key, "")).strip() or None)
            for key in ("name", "role", "district", "login")}
    try:
        official, token = await add(request, principal, body)
    except DomainError as failure:
        return await _officials_page(request, principal, error=failure.message,
                                     status=422 if failure.code == "validation_error" else 409
                                     if failure.code == "conflict" else 403)
    return await _officials_page(request, principal, status=201, shown={
        "name": official.name, "login": official.login, "token": token})


async def officials_disable(request: Request) -> Response:
    principal = await _admin(request)
    if isinstance(principal, Response):
        return principal
    try:
        await disable(request, principal, request.path_params["id"])
    except DomainError as failure:
        return await _officials_page(request, principal, error=failure.message, status=409)
    return RedirectResponse("/admin/officials", status_code=303)


async def officials_rotate(request: Request) -> Response:
    principal = await _admin(request)
    if isinstance(principal, Response):
        return principal
    try:
        official, token = await rotate(request, principal, request.path_params["id"])
    except DomainError as failure:
        return await _officials_page(request, principal, error=failure.message, status=409)
    return await _officials_page(request, principal, shown={
        "name": official.name, "login": official.login, "token": token})


# --- my account: password and authenticator ------------------------------------------------

async def account(request: Request) -> Response:
    principal = await signed_in_official(request, "account")
    if isinstance(principal, Response):
        return principal
    return await _account_page(request, principal)


async def _account_page(request: Request, principal: Principal, *, qr: str | None = None,
                        secret_uri: str | None = None, message: str | None = None,
                        error: str | None = None, status: int = 200) -> Response:
    me = official_public(await in_session(request, get_official, principal.id))
    return page(request, "account.html", principal, {
        "me": me, "qr": qr, "secret_uri": secret_uri, "message": message, "error": error,
    }, section="account", status=status)


async def account_credentials(request: Request) -> Response:
    """Set a password and a new authenticator secret: the QR code is shown this once."""
    principal = await signed_in_official(request, "account")
    if isinstance(principal, Response):
        return principal
    form = await request.form()
    password, again = form.get("password"), form.get("password2")
    if password != again:
        return await _account_page(request, principal, error="adm_password_mismatch",
                                   status=422)

    def write(session):
        uri = set_credentials(session, official_id=principal.id, password=password)
        audit.record(session, actor=principal.audit_actor, action=audit.OFFICIAL_ENROL,
                     target=f"official:{principal.id}",
                     detail={"step": "password_and_secret", **client_detail(request)})
        session.commit()
        return uri

    try:
        uri = await in_session(request, write)
    except DomainError:
        return await _account_page(request, principal, error="adm_password_rules", status=422)
    image = "data:image/svg+xml;base64," + base64.b64encode(qr_svg(uri)).decode()
    return await _account_page(request, principal, qr=image, secret_uri=uri)


async def account_confirm(request: Request) -> Response:
    """Confirm the authenticator with a code from it: password sign-in is then possible."""
    principal = await signed_in_official(request, "account")
    if isinstance(principal, Response):
        return principal
    form = await request.form()

    def write(session):
        ok = confirm_totp(session, official_id=principal.id, code=form.get("code"))
        if ok:
            audit.record(session, actor=principal.audit_actor, action=audit.OFFICIAL_ENROL,
                         target=f"official:{principal.id}",
                         detail={"step": "authenticator_confirmed", **client_detail(request)})
            session.commit()
        return ok

    try:
        ok = await in_session(request, write)
    except DomainError:
        ok = False
    if not ok:
        return await _account_page(request, principal, error="adm_code_wrong", status=422)
    return await _account_page(request, principal, message="adm_enrolled")


routes = [
    Route("/admin/officials", officials, methods=["GET"]),
    Route("/admin/officials", officials_add, methods=["POST"]),
    Route("/admin/officials/{id:int}/disable", officials_disable, methods=["POST"]),
    Route("/admin/officials/{id:int}/token", officials_rotate, methods=["POST"]),
    Route("/admin/account", account, methods=["GET"]),
    Route("/admin/account/credentials", account_credentials, methods=["POST"]),
    Route("/admin/account/confirm", account_confirm, methods=["POST"]),
]
