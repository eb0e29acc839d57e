"""Server-rendered pages: the phone page behind a QR code, QR images, posters, sign-in."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from models.venues import get_logbook
from web.api_registrar import _citizen
from web.app import in_session
from web.qr import qr_png, qr_svg


async def _registrar_logbook(request: Request):
    citizen = await _citizen(request)
    logbook = await in_session(request, get_logbook, logbook_id=request.path_params["id"],
                               actor=citizen)
    return logbook, f"{request.app.state.settings.public_url}/s/{logbook.code}"


async def logbook_qr(request: Request) -> Response:
    logbook, url = await _registrar_logbook(request)
    if request.path_params["fmt"] == "png":
        return Response(qr_png(url), media_type="image/png")
    if request.path_params["fmt"] == "svg":
        return Response(qr_svg(url), media_type="image/svg+xml")
    from models.errors import NotFound

    raise NotFound("仅支持 png 与 svg / qr.png or qr.svg")


async def login(request: Request) -> Response:
    """POST a bearer token (form field `token`) to get the browser session cookie."""
    from web.auth import principal_for_token

    form = await request.form()
    token = str(form.get("token", "")).strip()
    principal = await principal_for_token(request.app.state, token) if token else None
    if principal is None:
        return RedirectResponse("/login?error=1", status_code=303)
    request.session.clear()
    if principal.official:
        request.session["official"] = True
    else:
        request.session["citizen_id"] = principal.citizen_id
    return RedirectResponse(str(form.get("next") or "/"), status_code=303)


routes = [
    Route("/logbooks/{id:int}/qr.{fmt:str}", logbook_qr, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
]
