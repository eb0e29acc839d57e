"""Venues, their registrars and their logbooks, with the eligibility rules."""

from __future__ import annotations

import base64
import hashlib
import secrets

from sqlmodel import Session, select

from models.errors import Forbidden, NotFound, RegistrarNotGreen, ValidationFailed
from models.status import Status
from models.stays import parse_max_stay
from models.tables import Citizen, Logbook, Registrar, Venue, utcnow
from models.timeutil import iso


def _text(body: dict, field: str, *, required: bool = True, max_len: int = 200) -> str:
    value = body.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValidationFailed(f"{field} 必填 / {field} is required and must be a string")
    if len(value) > max_len:
        raise ValidationFailed(f"{field} 过长 / {field} is longer than {max_len} characters")
    return value.strip()


def require_green(citizen: Citizen) -> None:
    if citizen.status != Status.GREEN:
        raise RegistrarNotGreen(
            "登记员健康状态须为未见异常 / a registrar's own status must be green"
        )


def create_venue(session: Session, *, owner: Citizen, body: dict) -> Venue:
    """Open a venue; its owner becomes its first registrar."""
    require_green(owner)
    capacity = body.get("capacity")
    if capacity is not None and (
        not isinstance(capacity, int) or isinstance(capacity, bool) or not 0 < capacity <= 10**7
    ):
        raise ValidationFailed("capacity 须为正整数 / capacity must be a positive integer")
    name = _text(body, "name")
    address = _text(body, "address", max_len=300)
    district = _text(body, "district", max_len=64)
    category = _text(body, "category", max_len=64)
    venue = Venue(
        name=name,
        address=address,
        district=district,
        category=category,
        capacity=capacity,
        max_stay_minutes=parse_max_stay(body.get("max_stay_minutes"), category),
        owner_id=owner.id,
    )
    session.add(venue)
    session.flush()
    session.add(Registrar(venue_id=venue.id, citizen_id=owner.id, role="owner"))
    session.commit()
    return venue


def get_venue(session: Session, venue_id: int) -> Venue:
    venue = session.get(Venue, venue_id)
    if venue is None:
        raise NotFound("场所不存在 / venue not found")
    return venue


def require_registrar(session: Session, venue_id: int, citizen_id: int) -> Registrar:
    """The citizen's active registrar duty at the venue, else NotFound/Forbidden."""
    get_venue(session, venue_id)
    duty = session.exec(
        select(Registrar).where(
            Registrar.venue_id == venue_id,
            Registrar.citizen_id == citizen_id,
            Registrar.active.is_(True),
        )
    ).first()
    if duty is None:
        raise Forbidden("您不是该场所的登记员 / you are not a registrar of this venue")
    return duty


def require_feed_access(session: Session, *, venue_id: int, citizen_id: int) -> Registrar:
    """A registrar may watch a venue's live feed while on duty there: an active registrar of
    the venue, green, and not suspended for a violation. Checked when the feed opens and
    again whenever realtime.events.access_changed names the venue or the registrar."""
    from models.violations import active_violation

    duty = require_registrar(session, venue_id, citizen_id)
    citizen = session.get(Citizen, citizen_id)
    if citizen is None:
        raise NotFound("居民不存在 / citizen not found")
    require_green(citizen)
    if active_violation(session, citizen_id) is not None:
        raise Forbidden("登记员因违规被暂停 / the registrar is suspended for a violation")
    return duty


def registrar_venues(session: Session, citizen_id: int) -> list[tuple[Venue, str]]:
    """The venues where the citizen is an active registrar, with their role, oldest first."""
    return list(session.exec(
        select(Venue, Registrar.role)
        .join(Registrar, Registrar.venue_id == Venue.id)
        .where(Registrar.citizen_id == citizen_id, Registrar.active.is_(True))
        .order_by(Venue.id)
    ).all())


def venue_public(venue: Venue, occupancy: int = 0) -> dict:
    """A venue as its registrars see it; `occupancy`: its open stays (models/stays.py)."""
    return {
        "id": venue.id,
        "name": venue.name,
        "address": venue.address,
        "district": venue.district,
        "category": venue.category,
        "capacity": venue.capacity,
        "max_stay_minutes": venue.max_stay_minutes,
        "occupancy": occupancy,
        "full": venue.capacity is not None and occupancy >= venue.capacity,
        "owner_id": venue.owner_id,
        "created_at": iso(venue.created_at),
    }


def new_code() -> str:
    """128 random bits: the code inside a logbook's QR code cannot be guessed."""
    return secrets.token_urlsafe(16)


def create_logbook(session: Session, *, venue_id: int, actor: Citizen, body: dict) -> Logbook:
    from models.violations import active_violation

    require_registrar(session, venue_id, actor.id)
    require_green(actor)
    if active_violation(session, actor.id) is not None:
        raise Forbidden("登记员因违规被暂停，不能申请新的登记簿 / a registrar suspended for a "
                        "violation cannot open a new logbook until it is lifted")
    label = _text(body, "label", max_len=100)
    logbook = Logbook(venue_id=venue_id, label=label, code=new_code(), created_by=actor.id)
    session.add(logbook)
    session.commit()
    return logbook


def list_logbooks(session: Session, *, venue_id: int, actor: Citizen) -> list[Logbook]:
    require_registrar(session, venue_id, actor.id)
    return list(
        session.exec(select(Logbook).where(Logbook.venue_id == venue_id).order_by(Logbook.id)).all()
    )


def get_logbook(session: Session, *, logbook_id: int, actor: Citizen | None) -> Logbook:
    """A logbook its registrars may see (actor None: an official, who sees every one)."""
    logbook = session.get(Logbook, logbook_id)
    if logbook is None:
        raise NotFound("登记簿不存在 / logbook not found")
    if actor is not None:
        require_registrar(session, logbook.venue_id, actor.id)
    return logbook


def set_logbook_state(session: Session, logbook: Logbook, state: str, reason: str | None) -> dict:
    """Change a logbook's state (caller commits); returns the feed event to publish."""
    logbook.state = state
    logbook.reason = reason
    logbook.state_at = utcnow()
    session.add(logbook)
    return logbook_event(logbook)


def logbook_event(logbook: Logbook) -> dict:
    return {"type": "logbook", "logbook_id": logbook.id, "venue_id": logbook.venue_id,
            "state": logbook.state, "reason": logbook.reason}


def delete_logbook(session: Session, *, logbook_id: int, actor: Citizen) -> dict:
    logbook = get_logbook(session, logbook_id=logbook_id, actor=actor)
    if logbook.state == "deleted":
        raise NotFound("登记簿已删除 / logbook already deleted")
    event = set_logbook_state(session, logbook, "deleted", "登记员删除 / deleted by a registrar")
    session.commit()
    return event


def short_code(logbook: Logbook) -> str:
    """The human-readable code printed under a poster's QR (场所码编号): venue and logbook,
    then four characters drawn from the QR's own code, so a poster can be matched with the
    logbook it was printed for (a reprint after a delete and re-create differs). It names the
    poster; it does not open it (the 128-bit code stays unguessable)."""
    digest = hashlib.sha256(logbook.code.encode()).digest()
    tail = base64.b32encode(digest).decode()[:4]
    return f"{logbook.venue_id}-{logbook.id}-{tail}"


def logbook_public(logbook: Logbook, public_url: str) -> dict:
    base = f"{public_url}/logbooks/{logbook.id}"
    return {
        "id": logbook.id,
        "venue_id": logbook.venue_id,
        "label": logbook.label,
        "state": logbook.state,
        "reason": logbook.reason,
        "token": logbook.code,
        "scan_url": f"{public_url}/s/{logbook.code}",
        "short_code": short_code(logbook),
        "qr_png": f"{base}/qr.png",
        "qr_svg": f"{base}/qr.svg",
        "poster": f"{base}/poster",
        "created_at": iso(logbook.created_at),
        "state_at": iso(logbook.state_at),
    }
