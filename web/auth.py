"""Who is calling: an official (their own token, or the bootstrap admin's
SCANBOOK_ADMIN_TOKEN), a citizen (bearer token), or either through a browser session (the
cookie names a session kept on the server: web/sessions.py)."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from models.audit import Actor
from models.citizens import hash_token
from models.errors import DomainError, Forbidden
from models.officials import LOWEST_ROLE, TOKEN_PREFIX, Permission, allows, official_by_token
from models.tables import Citizen, Official
from web.sessions import SESSION_ID_KEY


class Unauthenticated(DomainError):
    code = "unauthenticated"


@dataclass(frozen=True)
class Principal:
    kind: str  # official | citizen
    citizen_id: int | None = None
    official_id: int | None = None
    name: str | None = None  # an official's name (citizens' names are never carried here)
    role: str | None = None
    district: str | None = None  # an official's district; None: the city level
    sid: str | None = None  # the browser session, when signed in by cookie

    @property
    def official(self) -> bool:
        return self.kind == "official"

    @property
    def id(self) -> int:
        return self.official_id if self.official else self.citizen_id  # type: ignore[return-value]

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.id}"

    @property
    def audit_actor(self) -> Actor:
        return Actor(self.kind, self.id, self.name, self.district)

    def may(self, permission: Permission) -> bool:
        return self.official and allows(self.role or "", permission)

    def covers(self, district: str | None) -> bool:
        """Whether this official may act on something in `district` (the city level may act
        everywhere)."""
        return self.official and (self.district is None or self.district == district)


def official_principal(official: Official, sid: str | None = None) -> Principal:
    return Principal("official", official_id=official.id, name=official.name,
                     role=official.role, district=official.district, sid=sid)


class TokenCache:
    """token hash → citizen id. A token never changes owner; a revoked one is forgotten on
    every process (web/sessions.py announces it).

    Misses that arrive together share one database query and one thread-pool hop: a crowd of
    first-time visitors costs a query per batch, not a query (and a pooled connection) each.
    """

    def __init__(self, size: int = 200_000):
        self.size = size
        self._map: dict[str, int] = {}
        self._waiting: dict[str, list[asyncio.Future]] = {}
        self._task: asyncio.Task | None = None
        self._forgets = 0  # a look-up that overlapped a revocation is not kept

    def get(self, key: str) -> int | None:
        return self._map.get(key)

    def clear(self) -> None:
        self._map.clear()
        self._forgets += 1

    def forget(self, key: str) -> None:
        """A revoked token (sign-out everywhere): the next request looks it up again."""
        self._map.pop(key, None)
        self._forgets += 1

    def put(self, key: str, citizen_id: int) -> None:
        if len(self._map) >= self.size:
            self._map.pop(next(iter(self._map)))
        self._map[key] = citizen_id

    async def lookup(self, engine, key: str) -> int | None:
        """The citizen a token hash belongs to: from the cache, else from the database."""
        citizen_id = self._map.get(key)
        if citizen_id is not None:
            return citizen_id
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if self._task is None:
            self._task = asyncio.create_task(self._resolve(engine), name="token-lookups")
        return await future

    async def _resolve(self, engine) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                forgets = self._forgets
                try:
                    found = await run_in_threadpool(_lookup_many, engine, list(batch))
                except Exception as exc:  # the database is away: every waiter gets the error
                    for futures in batch.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for key, futures in batch.items():
                    citizen_id = found.get(key)
                    if citizen_id is not None and forgets == self._forgets:
                        self.put(key, citizen_id)
                    for future in futures:
                        if not future.done():
                            future.set_result(citizen_id)
        finally:
            self._task = None


_LOOKUP_CHUNK = 500


def _lookup_many(engine, keys: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    with engine.connect() as conn:
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start:start + _LOOKUP_CHUNK]
            query = select(Citizen.id, Citizen.token_hash).where(Citizen.token_hash.in_(chunk))
            found.update({token_hash: citizen_id for citizen_id, token_hash in conn.execute(query)})
    return found


def _bearer(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _official_for_token(engine, token: str, bootstrap: bool) -> Official | None:
    with Session(engine, expire_on_commit=False) as session:
        official = official_by_token(session, token)
        if official is None and bootstrap:  # the row is made at start-up; a wiped table too
            from models.officials import ensure_bootstrap

            official, _ = ensure_bootstrap(session, token)
        return official


def _active_official(engine, official_id: int) -> Official | None:
    with Session(engine, expire_on_commit=False) as session:
        official = session.get(Official, official_id)
        return official if official is not None and official.active else None


async def principal_for_token(state, token: str) -> Principal | None:
    """The official or the citizen a bearer token belongs to. Officials are looked up on
    every request (a disabled account or a rotated token stops at once); citizens' tokens
    go through the cache, which forgets a token when it is revoked (web/sessions.py)."""
    bootstrap = hmac.compare_digest(token.encode(), state.settings.admin_token.encode())
    if bootstrap or token.startswith(TOKEN_PREFIX):
        official = await run_in_threadpool(_official_for_token, state.engine, token, bootstrap)
        return None if official is None else official_principal(official)
    citizen_id = await state.tokens.lookup(state.engine, hash_token(token))
    return None if citizen_id is None else Principal("citizen", citizen_id)


_PRINCIPAL = "scanbook.principal"  # the scope key that keeps a request's answer


async def authenticate(conn: HTTPConnection) -> Principal | None:
    """The caller, or None. Bearer tokens first; then the browser's session, which must
    still be live on the server."""
    if _PRINCIPAL in conn.scope:
        return conn.scope[_PRINCIPAL]
    principal = await _authenticate(conn)
    conn.scope[_PRINCIPAL] = principal
    return principal


async def _authenticate(conn: HTTPConnection) -> Principal | None:
    token = _bearer(conn)
    state = conn.app.state
    if token is not None:
        return await principal_for_token(state, token)
    session = conn.scope.get("session") or {}
    sid = session.get(SESSION_ID_KEY)
    if sid is None:
        return None
    found = await state.sessions.get(sid)
    if found is None:
        return None
    kind, principal_id = found
    if kind == "citizen":
        return Principal("citizen", principal_id, sid=sid)
    official = await run_in_threadpool(_active_official, state.engine, principal_id)
    return None if official is None else official_principal(official, sid)


async def start_session(request, principal: Principal) -> None:
    """Sign the browser in: a new server-side session, named by the (signed) cookie. A
    session the browser had before ends (no one inherits it)."""
    sessions = request.app.state.sessions
    old = request.session.get(SESSION_ID_KEY)
    if isinstance(old, str):
        await sessions.end(old)
    request.session.clear()
    request.session[SESSION_ID_KEY] = await sessions.create(principal.kind, principal.id)
    forget_principal(request)


def forget_principal(conn: HTTPConnection) -> None:
    """Sign-in or sign-out changed who is calling: authenticate afresh."""
    conn.scope.pop(_PRINCIPAL, None)


def _load_citizen(engine, citizen_id: int) -> Citizen | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.get(Citizen, citizen_id)


async def current_citizen(conn: HTTPConnection) -> Citizen:
    """The signed-in citizen's row (401 without a citizen, 403 for an official)."""
    principal = await require(conn, "citizen")
    citizen = await run_in_threadpool(_load_citizen, conn.app.state.engine,
                                      principal.citizen_id)
    if citizen is None:
        raise Unauthenticated("账户不存在 / account not found")
    return citizen


async def require(conn: HTTPConnection, kind: str | None = None) -> Principal:
    return required(await authenticate(conn), kind)


async def require_official(conn: HTTPConnection, permission: Permission) -> Principal:
    """The calling official when their role grants `permission`; else 401 or 403."""
    return permitted(await require(conn, "official"), permission)


def permitted(principal: Principal, permission: Permission) -> Principal:
    if not principal.may(permission):
        raise Forbidden(f"您的角色（{principal.role}）无此权限 / your role ({principal.role}) may "
                        f"not do this: it needs {LOWEST_ROLE[permission]} or above")
    return principal


def require_district(principal: Principal, district: str | None) -> None:
    """403 unless the official's district covers `district` (the city level covers all)."""
    if not principal.covers(district):
        raise Forbidden(f"仅限本辖区（{principal.district}）/ outside your district "
                        f"({principal.district})")


def required(principal: Principal | None, kind: str | None = None) -> Principal:
    """The caller when it is of `kind` (any kind when None); else 401 or 403."""
    if principal is None:
        raise Unauthenticated("请先登录 / authentication required")
    if kind is not None and principal.kind != kind:
        raise Forbidden(
            "仅限卫生健康部门 / officials only" if kind == "official"
            else "仅限居民账户 / citizens only"
        )
    return principal


async def still_signed_in(conn: HTTPConnection, principal: Principal) -> bool:
    """Whether a long-lived connection's caller is still who they were: their browser session
    still live (or their bearer token still theirs), an official's account still active.
    WebSockets ask on every access recheck (web/ws.py) and close 4401 when not."""
    state = conn.app.state
    if principal.sid is not None:
        if await state.sessions.get(principal.sid) != (principal.kind, principal.id):
            return False
    else:
        token = _bearer(conn)
        again = await principal_for_token(state, token) if token is not None else None
        return again is not None and (again.kind, again.id) == (principal.kind, principal.id)
    if principal.official:
        return await run_in_threadpool(_active_official, state.engine, principal.id) is not None
    return True
