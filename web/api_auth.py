"""Sign-in by phone number and a one-time SMS code (browsers get the session cookie).

POST /api/auth/otp {phone} → 202 whether or not the number is registered (no one learns who
is); a code is sent only to a registered citizen's phone. POST /api/auth/verify {phone, code,
citizen_id?} → 200 with the card and the session cookie. Several citizens may share a phone
(a parent's for the children): without citizen_id that answers 409 conflict with
`detail.choices` (masked), and the same code may then be sent again with the choice.
"""

from __future__ import annotations

import logging

from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models import audit
from models.citizens import citizen_card
from models.errors import Conflict, TooManyRequests, ValidationFailed
from models.masking import mask_id_number, mask_name
from models.officials import check_sign_in
from models.tables import Citizen
from web import otp
from web.auth import Principal, Unauthenticated, official_principal, start_session
from web.common import in_session
from web.responses import JSON, read_json

log = logging.getLogger("scanbook.auth")

SEND_PER_MINUTE = 1  # per phone: the page counts down before "resend"
SEND_PER_HOUR = 5  # per phone
SEND_PER_HOUR_FROM_ONE_ADDRESS = 30
VERIFY_PER_10_MIN = 10  # per phone, on top of MAX_TRIES per code


def _gateway(request: Request) -> otp.SmsGateway:
    state = request.app.state
    gateway = getattr(state, "sms_gateway", None)
    if gateway is None:
        gateway = state.sms_gateway = otp.load_gateway(state.settings, state.redis)
    return gateway


async def _json_body(request: Request) -> dict:
    """JSON only: a cross-site HTML form cannot send application/json, so nobody can sign a
    visitor in to another account from their own page (login CSRF)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise ValidationFailed("Content-Type 须为 application/json / send application/json")
    return await read_json(request)


def _holders(session: Session, phone: str) -> list[Citizen]:
    return list(session.exec(
        select(Citizen).where(Citizen.phone.in_(otp.phone_forms(phone))).order_by(Citizen.id)
    ).all())


async def send_code(request: Request) -> Response:
    """POST /api/auth/otp: text a sign-in code to a registered citizen's phone."""
    body = await _json_body(request)
    phone = otp.normalize_phone(body.get("phone"))
    limiter = request.app.state.limiter
    address = request.client.host if request.client else "-"
    await limiter.hit("otp-send-ip", address, limit=SEND_PER_HOUR_FROM_ONE_ADDRESS, window=3600)
    await limiter.hit("otp-send-min", phone, limit=SEND_PER_MINUTE, window=60)
    await limiter.hit("otp-send-hour", phone, limit=SEND_PER_HOUR, window=3600)
    holders = await in_session(request, _holders, phone)
    if holders:
        state = request.app.state
        gateway = _gateway(request)

        def send() -> None:
            code = otp.issue(state.redis, state.settings.secret, phone)
            gateway.send_code(phone, code, otp.CODE_TTL)

        await run_in_threadpool(send)
    else:
        log.info("sign-in code asked for an unregistered phone %s", otp.mask_phone(phone))
    return JSON({"sent": True, "ttl": otp.CODE_TTL, "resend_after": 60}, status_code=202)


async def verify(request: Request) -> Response:
    """POST /api/auth/verify: the code from the SMS signs the browser in."""
    body = await _json_body(request)
    phone = otp.normalize_phone(body.get("phone"))
    code = otp.clean_code(body.get("code"))
    choice = body.get("citizen_id")
    if choice is not None and (not isinstance(choice, int) or isinstance(choice, bool)):
        raise ValidationFailed("citizen_id 须为整数 / citizen_id must be an integer")
    await request.app.state.limiter.hit("otp-verify", phone, limit=VERIFY_PER_10_MIN,
                                        window=600)
    holders = await in_session(request, _holders, phone)
    if choice is not None:
        holders = [c for c in holders if c.id == choice]
    state = request.app.state
    several = len(holders) > 1
    ok = await run_in_threadpool(otp.check, state.redis, state.settings.secret, phone, code,
                                 consume=not several)
    if not ok or not holders:
        raise Unauthenticated("验证码错误或已过期 / the code is wrong or has expired")
    if several:
        raise Conflict("该手机号登记了多位居民，请选择 / several people use this phone: choose one",
                       detail={"choices": [{"citizen_id": c.id, "name_masked": mask_name(c.name),
                                            "id_masked": mask_id_number(c.id_number)}
                                           for c in holders]})
    citizen = holders[0]
    await start_session(request, Principal("citizen", citizen.id))
    return JSON({**citizen_card(citizen), "signed_in": True})


# --- officials: login name, password and an authenticator code ------------------------------

OFFICIAL_TRIES = 10  # per login name in 10 minutes
OFFICIAL_TRIES_FROM_ONE_ADDRESS = 30


async def official_sign_in(request: Request, login: object, password: object, code: object
                           ) -> Principal:
    """Check an official's credentials: rate limited per login and per address (429), every
    failure audited (no secret in the audit); success starts the browser session."""
    address = request.client.host if request.client else "-"
    name = login.strip()[:64] if isinstance(login, str) else ""
    limiter = request.app.state.limiter
    detail = {"login": name, "ip": address, "method": "password",
              "user_agent": request.headers.get("user-agent", "")[:200]}
    try:
        await limiter.hit("official-sign-in-ip", address, limit=OFFICIAL_TRIES_FROM_ONE_ADDRESS,
                          window=600)
        await limiter.hit("official-sign-in", name or "-", limit=OFFICIAL_TRIES, window=600)
    except TooManyRequests:
        def refused(session):
            audit.record(session, actor=audit.SYSTEM, action=audit.SIGN_IN_FAILED,
                         target=f"login:{name}"[:64], detail={**detail, "rate_limited": True})
            session.commit()

        await in_session(request, refused)
        raise

    def check(session):
        official = check_sign_in(session, login=name, password=password, code=code)
        if official is None:
            audit.record(session, actor=audit.SYSTEM, action=audit.SIGN_IN_FAILED,
                         target=f"login:{name}"[:64], detail=detail)
        else:
            audit.record(session, actor=official_principal(official).audit_actor,
                         action=audit.SIGN_IN, target=f"official:{official.id}", detail=detail)
        session.commit()
        return official

    official = await in_session(request, check)
    if official is None:
        log.info("failed official sign-in from %s", address)
        raise Unauthenticated("登录名、密码或验证码错误 / wrong login, password or code")
    principal = official_principal(official)
    await start_session(request, principal)
    return principal


async def official_verify(request: Request) -> Response:
    """POST /api/auth/official {login, password, code}: an official signs in (session
    cookie)."""
    body = await _json_body(request)
    principal = await official_sign_in(request, body.get("login"), body.get("password"),
                                       body.get("code"))
    return JSON({"signed_in": True, "id": principal.id, "name": principal.name,
                 "role": principal.role, "district": principal.district})


routes = [
    Route("/api/auth/otp", send_code, methods=["POST"]),
    Route("/api/auth/verify", verify, methods=["POST"]),
    Route("/api/auth/official", official_verify, methods=["POST"]),
]
