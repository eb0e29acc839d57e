"""Browser-facing protections: security headers, CSRF for cookie-authenticated requests, a
same-origin check on sign-in/out and on cookie-authenticated WebSocket handshakes, and a cap on
request bodies (payload_too_large before anything is buffered).

CSRF. A request is cookie-authenticated when the session cookie names a principal and there is
no bearer token (API clients with `Authorization: Bearer` are exempt: a browser never adds that
header to a cross-site request). Such a request, when it changes state (POST, PUT, PATCH,
DELETE), must carry the session's CSRF token in the `X-CSRF-Token` header, or in the form field
`csrf_token` for an HTML form. The token lives in the signed session, so it cannot be planted
from outside; a JavaScript-readable `scanbook_csrf` cookie carries a copy to the page's scripts
(web/static/csrf.js). It is created on the first response after sign-in and dropped on sign-out.

/login and /logout have no token to check (there is no session yet, or it is ending): they are
refused instead when the browser says the form came from another origin (Origin, else Referer).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.errors import DomainError
from web.responses import MAX_BODY, error

CSRF_COOKIE = "scanbook_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SESSION_KEY = "csrf"
COOKIE_MAX_AGE = 14 * 24 * 3600  # the session cookie's lifetime (SessionMiddleware's default)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
ORIGIN_CHECKED = frozenset({"/login", "/login/official", "/logout"})
TOO_LARGE = "请求体过大 / request body too large"
MAX_FORM = 64 * 1024  # the app's forms are a token and a path; a CSRF check buffers no more
CLOSE_FORBIDDEN = 4403
HSTS = "max-age=31536000; includeSubDomains"
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def script_hash(text: str) -> str:
    """The CSP source that allows one inline script with exactly this text."""
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def page_script_hashes() -> list[str]:
    """Hashes of the inline scripts the page templates execute: the import map in base.html
    (`{{ import_map | tojson }}`). JSON data blocks (`type="application/json"`) are not run and
    need none. tests/web/test_security.py fails when a page has an inline script not listed."""
    from web.pages import IMPORT_MAP, templates

    rendered = templates.env.from_string("{{ m | tojson }}").render(m=IMPORT_MAP)
    return [script_hash(rendered)]


def content_security_policy(script_hashes: Iterable[str], host: str | None) -> str:
    sockets = f" ws://{host} wss://{host}" if host and _HOST.match(host) else ""
    return "; ".join([
        "default-src 'self'",
        # 'wasm-unsafe-eval': compiling WebAssembly (the QR decoder the live page scans
        # visitors' personal codes with, web/static/vendor); it allows no JavaScript eval.
        "script-src 'self' 'wasm-unsafe-eval' " + " ".join(script_hashes),
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        # 'self' covers same-host WebSockets in CSP 3; older WebKit needs them spelled out.
        f"connect-src 'self'{sockets}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def _bearer(headers: Headers) -> bool:
    """Exactly the test web.auth uses to prefer a bearer token over the session cookie."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def _signed_in(session: dict) -> bool:
    """The cookie names a server-side session (web/sessions.py); whether it is still live
    is web.auth's question."""
    return isinstance(session.get("sid"), str)


def _capped(receive: Receive) -> Receive:
    """A chunked body (no Content-Length) is cut off past MAX_BODY: the endpoint reading it
    gets payload_too_large instead of buffering without end."""
    seen = 0

    async def capped() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > MAX_BODY:
            raise DomainError(TOO_LARGE, code="payload_too_large")
        return message

    return capped


def _cookie(header: str | None, name: str) -> str | None:
    """One cookie's value from a Cookie header (no full parse on the hot path)."""
    if not header or name not in header:
        return None
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _origin_of(url: str) -> tuple[str, str] | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return parts.scheme.lower(), parts.netloc.lower()


# Every API answer is someone's data (the trace unmasked, tokens, a citizen's own card, a
# logbook's export): no cache, shared or private, may keep one (web.lanes adds it too).
API_NO_STORE = (b"cache-control", b"no-store")


class SecurityMiddleware:
    """Sits inside SessionMiddleware (it reads and extends `scope["session"]`)."""

    def __init__(self, app: ASGIApp, *, production: bool, public_url: str,
                 script_hashes: Iterable[str] | None = None) -> None:
        self.app = app
        self.production = production
        self.public_origin = _origin_of(public_url)
        self.script_hashes = list(page_script_hashes() if script_hashes is None
                                  else script_hashes)
        self.cookie_flags = "Path=/; SameSite=Lax" + ("; Secure" if production else "")
        fixed = {
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
            "referrer-policy": "same-origin",
            "cross-origin-opener-policy": "same-origin",
            "permissions-policy": "camera=(self), microphone=(), geolocation=()",
            **({"strict-transport-security": HSTS} if production else {}),
        }
        self.fixed_headers = [(k.encode(), v.encode()) for k, v in fixed.items()]
        self._policies: dict[str, bytes] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # --- same origin ------------------------------------------------------------------------

    def _same_origin(self, headers: Headers) -> bool:
        """False only when the browser says the request came from another origin."""
        origin = headers.get("origin")
        if origin is None:
            referer = headers.get("referer")
            if not referer:
                return True  # not a browser form or script: nothing to forge
            origin = referer
        found = _origin_of(origin)
        if found is None:  # "null" (sandboxed or privacy-stripped): origin unknown
            return False
        if found == self.public_origin:
            return True
        return found[1] == headers.get("host", "").lower()

    # --- HTTP -------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        session = scope.get("session")
        if session is None:
            raise RuntimeError("SecurityMiddleware must run inside SessionMiddleware")
        length = headers.get("content-length")
        if length is not None:
            if length.isdigit() and int(length) > MAX_BODY:
                return await self._too_large(scope, receive, send)
        elif "transfer-encoding" in headers:
            receive = _capped(receive)
        if scope["method"] not in SAFE_METHODS:
            if scope["path"] in ORIGIN_CHECKED:
                if not self._same_origin(headers):
                    return await self._refuse(scope, receive, send, "跨站请求已拒绝 / "
                                              "cross-site request refused")
            elif _signed_in(session) and not _bearer(headers):
                receive, ok = await self._check_token(scope, receive, headers, session)
                if not ok:
                    return await self._refuse(
                        scope, receive, send, "缺少或无效的 CSRF 令牌 / missing or invalid "
                        "CSRF token: send the scanbook_csrf cookie's value in X-CSRF-Token "
                        "(web/static/csrf.js) or the form field csrf_token")

        added = [*self.fixed_headers, (b"content-security-policy", self._policy(headers))]
        if scope["path"].startswith("/api/"):
            added.append(API_NO_STORE)
        sent = _cookie(headers.get("cookie"), CSRF_COOKIE)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", ()))
                present = {name.lower() for name, _ in raw}  # a handler's own choice wins
                raw += [h for h in added if h[0] not in present]
                cookie = self._csrf_cookie(session, sent)
                if cookie is not None:
                    raw.append((b"set-cookie", cookie.encode()))
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _policy(self, headers: Headers) -> bytes:
        return self.policy_for(headers.get("host", ""))

    def policy_for(self, host: str) -> bytes:
        """The Content-Security-Policy header's value for a request to `host`."""
        policy = self._policies.get(host)
        if policy is None:
            if len(self._policies) > 64:  # a cache of the few names the server answers to
                self._policies.clear()
            policy = self._policies[host] = content_security_policy(
                self.script_hashes, host).encode()
        return policy

    def _csrf_cookie(self, session: dict, sent: str | None) -> str | None:
        """Give a signed-in session its token; the Set-Cookie that gives the page a readable
        copy of it (or drops the copy after sign-out), when the browser's copy differs."""
        if _signed_in(session):
            token = session.get(SESSION_KEY)
            if not isinstance(token, str):
                token = session[SESSION_KEY] = secrets.token_urlsafe(32)
            if sent != token:
                return f"{CSRF_COOKIE}={token}; Max-Age={COOKIE_MAX_AGE}; {self.cookie_flags}"
            return None
        if SESSION_KEY in session:
            del session[SESSION_KEY]
        if sent is not None:
            return f"{CSRF_COOKIE}=; Max-Age=0; {self.cookie_flags}"
        return None

    async def _check_token(self, scope: Scope, receive: Receive, headers: Headers,
                           session: dict) -> tuple[Receive, bool]:
        """(the receive to hand on, whether the request carries the session's token)."""
        expected = session.get(SESSION_KEY)
        given = headers.get(CSRF_HEADER)
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if given is None and content_type in _FORM_TYPES:
            receive, given = await self._form_token(scope, receive)
        ok = (isinstance(expected, str) and isinstance(given, str)
              and hmac.compare_digest(given.encode(), expected.encode()))
        return receive, ok

    async def _form_token(self, scope: Scope, receive: Receive) -> tuple[Receive, str | None]:
        """Read the form's csrf_token; the body is buffered and replayed to the endpoint."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > MAX_FORM or not message.get("more_body", False):
                break

        def replay_from(queue: list[Message]) -> Receive:
            async def replay() -> Message:
                return queue.pop(0) if queue else await receive()

            return replay

        if size > MAX_FORM:
            return replay_from(messages), None
        try:
            form = await Request(scope, replay_from(list(messages))).form(max_fields=100)
        except (HTTPException, MultiPartException, ClientDisconnect):
            return replay_from(messages), None  # the endpoint reports the malformed form
        value = form.get(CSRF_FIELD)
        await form.close()
        return replay_from(messages), value if isinstance(value, str) else None

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, message: str) -> None:
        await error("forbidden", message, 403)(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error("payload_too_large", TOO_LARGE)(scope, receive, send)

    # --- WebSocket --------------------------------------------------------------------------

    def cross_site_websocket(self, scope: Scope) -> bool:
        """Cross-site WebSocket hijacking: a page on another origin opening a feed with the
        visitor's session cookie. Bearer-token clients are not browsers; they pass."""
        headers = Headers(scope=scope)
        session = scope.get("session") or {}
        return _signed_in(session) and not _bearer(headers) and not self._same_origin(headers)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.cross_site_websocket(scope):
            await refuse_cross_site(receive, send)
            return
        await self.app(scope, receive, send)


async def refuse_cross_site(receive: Receive, send: Send) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": CLOSE_FORBIDDEN,
                "reason": "cross-origin WebSocket refused"})
