"""The outermost ASGI layer: two lanes that skip the middleware stack, everything else goes the
full way (sessions, CSRF, security headers, exception handlers, the router).

- **WebSockets.** A WebSocket stays open for hours, and every middleware frame it passes
  through stays alive with it: at 10,000 idle feeds Starlette's error, session and exception
  layers cost about 7 KB a connection. So the session cookie is decoded here (the same signer
  and format as SessionMiddleware), the cross-origin check runs (SecurityMiddleware's), then
  the WebSocket route is matched here (`route.matches`, as the router does). These two rely
  on SessionMiddleware's cookie format and on BaseRoute.matches: pyproject pins Starlette to
  the range tests/web/test_lanes.py checks them against.
- **Bearer scans.** `POST /api/scan` with `Authorization: Bearer`, a Content-Length and no
  cookie: every visitor at every door, the hottest request there is. It runs the same
  `web.api_citizen.check_in` as the route; errors go through the app's own exception
  handlers (Starlette's ExceptionMiddleware, given the app's handlers); the answer carries the
  same security headers. What it skips is the per-request
  machinery of five middleware layers, the router's matching and the Request/Response
  objects (bench/README.md: about a quarter of a scan's CPU). There is nothing for those
  layers to do on such a request: no session cookie to decode or to set (so no CSRF check:
  a browser never adds a bearer header to a cross-site request), a body small enough to take
  whole. Anything else — a browser's cookie scan, a chunked or oversized body — takes the
  full stack.
"""

from __future__ import annotations

import logging
from base64 import b64decode
from typing import Any

import itsdangerous
import orjson
from starlette.applications import Starlette
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import ClientDisconnect
from starlette.routing import Match, WebSocketRoute
from starlette.websockets import WebSocket

from models.settings import Settings
from web import security
from web.api_citizen import check_in
from web.auth import principal_for_token, required
from web.common import SESSION_COOKIE, SESSION_MAX_AGE
from web.security import API_NO_STORE, SecurityMiddleware, refuse_cross_site

log = logging.getLogger("scanbook.web")

SCAN_PATH = "/api/scan"
# A scan's body is a code and maybe a time: a few hundred bytes. Larger declared bodies take
# the full stack (which answers payload_too_large past MAX_BODY).
SCAN_BODY_MAX = 16 * 1024
_JSON = (b"content-type", b"application/json")


class Lanes:
    """Wraps the Starlette app; `app.state`, `app.router`, … reach through to it."""

    def __init__(self, app: Starlette, settings: Settings):
        self.app = app
        self._signer = itsdangerous.TimestampSigner(str(settings.secret))
        # The same policy as the stack's own SecurityMiddleware (the pages' script hashes too):
        # a lane's answer carries exactly the headers the full stack's would.
        self._guard = SecurityMiddleware(app.router, production=settings.production,
                                         public_url=settings.public_url)
        # Matched here rather than by the router, whose frames would also stay alive.
        self._ws_routes = [r for r in app.routes if isinstance(r, WebSocketRoute)]
        # A scan's errors: the app's own handlers, picked as the full stack picks them. Only
        # an error goes through it (its wrappers were ~3 % of the loop's py-spy samples).
        self._scan_errors = ExceptionMiddleware(self._raise_scan_error,
                                                handlers=app.exception_handlers)
        self._headers: dict[bytes, list[tuple[bytes, bytes]]] = {}  # host → security headers

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            if scope["path"] == SCAN_PATH and scope["method"] == "POST":
                lane = _scan_lane(scope["headers"])
                if lane is not None:
                    await self._scan(scope, receive, send, *lane)
                    return
            await self.app(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # --- bearer scans ---------------------------------------------------------------------

    async def _scan(self, scope: Any, receive: Any, send: Any, token: str, host: bytes) -> None:
        scope["app"] = self.app  # for an exception handler's Request
        security_headers = self._security_headers(host)
        try:
            answer = await self._scan_answer(scope, receive, token)
        except Exception as exc:  # the app's own handler answers it, or it goes on up
            scope["scanbook.error"] = exc

            async def send_secured(message: dict) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", ()), *security_headers]
                await send(message)

            await self._scan_errors(scope, receive, send_secured)
            return
        if answer is None:
            return  # nobody to answer; the check-in, if written, stands (as on the full stack)
        content, status = answer
        await send({"type": "http.response.start", "status": status,
                    "headers": [_JSON, (b"content-length", str(len(content)).encode()),
                                *security_headers]})
        await send({"type": "http.response.body", "body": content})

    async def _scan_answer(self, scope: Any, receive: Any, token: str
                           ) -> tuple[bytes, int] | None:
        """The scan's answer (body, status); None when the client went away first."""
        state = self.app.state

        async def body() -> bytes:
            chunks = []
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect()
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    return b"".join(chunks)

        principal = required(await principal_for_token(state, token), "citizen")
        try:
            answer, status = await check_in(state, principal.citizen_id, body)
        except ClientDisconnect:
            return None
        return orjson.dumps(answer), status

    @staticmethod
    async def _raise_scan_error(scope: Any, receive: Any, send: Any) -> None:
        """What ExceptionMiddleware wraps for the lane: the error _scan caught."""
        raise scope.pop("scanbook.error")

    def _security_headers(self, host: bytes) -> list[tuple[bytes, bytes]]:
        headers = self._headers.get(host)
        if headers is None:
            if len(self._headers) > 64:  # the few names the server answers to
                self._headers.clear()
            policy = self._guard.policy_for(host.decode("latin-1"))
            headers = self._headers[host] = [*self._guard.fixed_headers,
                                             (b"content-security-policy", policy),
                                             API_NO_STORE]  # the lanes are all /api/
        return headers

    # --- WebSockets -----------------------------------------------------------------------

    def _session(self, scope: dict) -> dict:
        for name, value in scope["headers"]:
            if name != b"cookie":
                continue
            for part in value.decode("latin-1").split(";"):
                key, _, data = part.strip().partition("=")
                if key == SESSION_COOKIE and data:
                    try:
                        raw = self._signer.unsign(data.encode(), max_age=SESSION_MAX_AGE)
                        session = orjson.loads(b64decode(raw))
                    except (itsdangerous.BadSignature, ValueError):
                        return {}
                    return session if isinstance(session, dict) else {}
        return {}

    async def _websocket(self, scope: Any, receive: Any, send: Any) -> None:
        scope["app"] = self.app
        scope["session"] = self._session(scope)
        if self._guard.cross_site_websocket(scope):
            await refuse_cross_site(receive, send)
            return
        for route in self._ws_routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                await route.endpoint(WebSocket(scope, receive, send))
                return
        await self.app(scope, receive, send)  # the router's own refusal


def _scan_lane(headers: list[tuple[bytes, bytes]]) -> tuple[str, bytes] | None:
    """(bearer token, host) when a scan request can take the lane, else None."""
    token = None
    host = b""
    length = -1
    for name, value in headers:
        if name == b"authorization":
            scheme, _, rest = value.partition(b" ")
            if scheme.lower() != b"bearer" or not rest.strip():
                return None
            token = rest.strip().decode("latin-1")
        elif name == b"content-length":
            if not value.isdigit():
                return None
            length = int(value)
        elif name == b"host":
            host = value
        elif name == b"cookie" or name == b"transfer-encoding":
            return None
    # security.MAX_BODY read here, not bound at import: the lane never takes a body the full
    # stack would refuse.
    if token is None or not 0 <= length <= min(SCAN_BODY_MAX, security.MAX_BODY):
        return None
    return token, host
