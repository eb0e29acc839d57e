"""Who is calling: an official (admin token), a citizen (bearer token or session cookie)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlmodel import Session, select
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
    """token hash → citizen id; a token never changes owner, so entries never go stale."""

    def __init__(self, size: int = 200_000):
        self.size = size
        self._map: dict[str, int] = {}

    def get(self, key: str) -> int | None:
        return self._map.get(key)

    def put(self, key: str, citizen_id: int) -> None:
        if len(self._map) >= self.size:
            self._map.pop(next(iter(self._map)))
        self._map[key] = citizen_id


def _bearer(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _lookup(engine, token_hash: str) -> int | None:
    with Session(engine) as session:
        return session.exec(select(Citizen.id).where(Citizen.token_hash == token_hash)).first()


async def principal_for_token(state, token: str) -> Principal | None:
    """The official (admin token) or the citizen a bearer token belongs to."""
    if hmac.compare_digest(token.encode(), state.settings.admin_token.encode()):
        return Principal("official")
    key = hash_token(token)
    citizen_id = state.tokens.get(key)
    if citizen_id is None:
        citizen_id = await run_in_threadpool(_lookup, state.engine, key)
        if citizen_id is None:
            return None
        state.tokens.put(key, citizen_id)
    return Principal("citizen", citizen_id)


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


async def require(conn: HTTPConnection, kind: str | None = None) -> Principal:
    principal = await authenticate(conn)
    if principal is None:
        raise Unauthenticated("请先登录 / authentication required")
    if kind is not None and principal.kind != kind:
        raise Forbidden(
            "仅限卫生健康部门 / officials only" if kind == "official"
            else "仅限居民账户 / citizens only"
        )
    return principal
