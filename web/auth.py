"""Who is calling: an official (admin token), a citizen (bearer token or session cookie)."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from models.citizens import hash_token
from models.errors import DomainError, Forbidden
from models.tables import Citizen


class Unauthenticated(DomainError):
    code = "unauthenticated"


@dataclass(frozen=True)
class Principal:
    kind: str  # official | citizen
    citizen_id: int | None = None

    @property
    def official(self) -> bool:
        return self.kind == "official"

    @property
    def actor(self) -> str:
        return "official" if self.official else f"citizen:{self.citizen_id}"


class TokenCache:
    """token hash → citizen id; a token never changes owner, so entries never go stale.

    Misses that arrive together share one database query and one thread-pool hop: a crowd of
    first-time visitors costs a query per batch, not a query (and a pooled connection) each.
    """

    def __init__(self, size: int = 200_000):
        self.size = size
        self._map: dict[str, int] = {}
        self._waiting: dict[str, list[asyncio.Future]] = {}
        self._task: asyncio.Task | None = None

    def get(self, key: str) -> int | None:
        return self._map.get(key)

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
                    if citizen_id is not None:
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


async def principal_for_token(state, token: str) -> Principal | None:
    """The official (admin token) or the citizen a bearer token belongs to."""
    if hmac.compare_digest(token.encode(), state.settings.admin_token.encode()):
        return Principal("official")
    citizen_id = await state.tokens.lookup(state.engine, hash_token(token))
    return None if citizen_id is None else Principal("citizen", citizen_id)


async def authenticate(conn: HTTPConnection) -> Principal | None:
    """The caller, or None. Bearer tokens first; then the browser's session cookie."""
    token = _bearer(conn)
    if token is not None:
        return await principal_for_token(conn.app.state, token)
    session = conn.scope.get("session") or {}
    if session.get("official"):
        return Principal("official")
    if isinstance(session.get("citizen_id"), int):
        return Principal("citizen", session["citizen_id"])
    return None


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
