"""Web Push subscriptions (a citizen's browsers) and what a push says (docs/push.md).

A subscription is what the browser's `PushSubscription.toJSON()` gives: the push service's
endpoint and the browser's keys (`p256dh`, a P-256 public key; `auth`, a 16-byte secret). The
server POSTs to the endpoint, so it must be a push service's https URL (settings.push_hosts);
outside production a loopback URL is accepted too (a local push endpoint in tests).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from models.errors import NotFound, ValidationFailed
from models.settings import is_loopback_url
from models.tables import PushSubscription
from models.timeutil import iso

MAX_ENDPOINT = 2048
MAX_PER_CITIZEN = 10  # browsers kept per citizen; a new one past this replaces the oldest

_p = PushSubscription.__table__


@dataclass(frozen=True)
class Subscription:
    endpoint: str
    p256dh: str
    auth: str


def _b64url(value: object, name: str, size: int) -> bytes:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ValidationFailed(f"keys.{name} 必填 / keys.{name} is required (base64url)")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise ValidationFailed(f"keys.{name} 格式不正确 / keys.{name} must be base64url of "
                               f"{size} bytes")
    return raw


def _host_allowed(host: str, hosts: tuple[str, ...]) -> bool:
    return any(host == h or host.endswith("." + h) for h in hosts)


def clean_subscription(body: dict, *, hosts: tuple[str, ...], production: bool
                       ) -> Subscription:
    """The subscription in `body` ({endpoint, keys: {p256dh, auth}}), checked."""
    endpoint = body.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise ValidationFailed("endpoint 必填 / endpoint is required")
    if len(endpoint) > MAX_ENDPOINT:
        raise ValidationFailed(f"endpoint 过长 / endpoint is at most {MAX_ENDPOINT} characters")
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
    except ValueError:
        parts, host = None, ""
    if parts is None or not host or parts.username or parts.password:
        raise ValidationFailed("endpoint 不是有效网址 / endpoint is not a valid URL")
    local = not production and parts.scheme in ("http", "https") and is_loopback_url(endpoint)
    if not local:
        if parts.scheme != "https":
            raise ValidationFailed("endpoint 必须是 https 网址 / endpoint must be an https URL")
        if not _host_allowed(host, hosts):
            raise ValidationFailed("endpoint 不是已知的推送服务 / endpoint is not a known push "
                                   "service")
    keys = body.get("keys")
    if not isinstance(keys, dict):
        raise ValidationFailed("keys 必填 / keys {p256dh, auth} are required")
    point = _b64url(keys.get("p256dh"), "p256dh", 65)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise ValidationFailed("keys.p256dh 不是 P-256 公钥 / keys.p256dh is not a P-256 "
                               "public key") from None
    _b64url(keys.get("auth"), "auth", 16)
    return Subscription(endpoint, keys["p256dh"].rstrip("="), keys["auth"].rstrip("="))


def _public(row) -> dict:
    return {"id": row.id, "endpoint": row.endpoint, "created_at": iso(row.created_at)}


def subscribe(conn: Connection, *, citizen_id: int, sub: Subscription, now: datetime
              ) -> tuple[dict, bool]:
    """Store the browser's subscription for the citizen (the caller commits); (item, new).
    The same endpoint again updates its keys, and moves it to this citizen if another had it
    (the browser's last signed-in citizen gets its pushes)."""
    row = conn.execute(select(_p).where(_p.c.endpoint == sub.endpoint)).first()
    values = {"citizen_id": citizen_id, "p256dh": sub.p256dh, "auth": sub.auth}
    if row is not None:
        conn.execute(update(_p).where(_p.c.id == row.id).values(**values))
        return _public(conn.execute(select(_p).where(_p.c.id == row.id)).one()), False
    new = conn.execute(insert(_p).values(endpoint=sub.endpoint, created_at=now, **values)
                       .returning(_p.c.id)).scalar_one()
    kept = select(_p.c.id).where(_p.c.citizen_id == citizen_id).order_by(
        _p.c.id.desc()).limit(MAX_PER_CITIZEN)
    conn.execute(delete(_p).where(_p.c.citizen_id == citizen_id, _p.c.id.not_in(kept)))
    return _public(conn.execute(select(_p).where(_p.c.id == new)).one()), True


def unsubscribe(conn: Connection, *, citizen_id: int, subscription_id: int) -> None:
    """Drop one of the citizen's subscriptions (404 when it is not theirs)."""
    gone = conn.execute(delete(_p).where(_p.c.id == subscription_id,
                                         _p.c.citizen_id == citizen_id)).rowcount
    if not gone:
        raise NotFound("没有这个通知订阅 / no such push subscription")


def unsubscribe_all(conn: Connection, *, citizen_id: int) -> int:
    """Drop every subscription of the citizen (signed out everywhere)."""
    return conn.execute(delete(_p).where(_p.c.citizen_id == citizen_id)).rowcount


def my_subscriptions(conn: Connection, *, citizen_id: int) -> list[dict]:
    rows = conn.execute(select(_p).where(_p.c.citizen_id == citizen_id).order_by(_p.c.id))
    return [_public(row) for row in rows]


def subscriptions_of(conn: Connection, citizen_ids: list[int]) -> dict[int, list]:
    """Each citizen's subscriptions (rows), for those who have any."""
    found: dict[int, list] = {}
    for row in conn.execute(select(_p).where(_p.c.citizen_id.in_(citizen_ids))
                            .order_by(_p.c.id)):
        found.setdefault(row.citizen_id, []).append(row)
    return found


def subscription_rows(conn: Connection, ids: list[int]) -> list:
    return list(conn.execute(select(_p).where(_p.c.id.in_(ids)).order_by(_p.c.id)))


def subscription_ids(conn: Connection, *, after: int = 0, limit: int = 1000) -> list[int]:
    """Every subscription's id after `after`, in order (an announcement's fan-out)."""
    return list(conn.execute(select(_p.c.id).where(_p.c.id > after).order_by(_p.c.id)
                             .limit(limit)).scalars())


def drop_endpoints(conn: Connection, ids: list[int]) -> int:
    """Forget subscriptions the push service says are gone (404/410)."""
    if not ids:
        return 0
    return conn.execute(delete(_p).where(_p.c.id.in_(ids))).rowcount

