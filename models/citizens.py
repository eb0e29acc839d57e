"""Citizens: registration, bearer tokens (stored only as hashes), the public card."""

from __future__ import annotations

import hashlib
import secrets
from datetime import date

from sqlalchemy import update
from sqlmodel import Session, select

from models.crypto import id_lookup
from models.errors import Conflict, ValidationFailed
from models.idnumber import parse_id_number
from models.masking import mask_id_number, mask_name
from models.tables import Checkin, Citizen, Visitor
from models.timeutil import BEIJING, iso

MINOR_PHOTO_LABEL = "未成年人照片未经人脸识别"
_vi = Visitor.__table__
_ck = Checkin.__table__


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "sbc_" + secrets.token_urlsafe(32)


def clean_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed("姓名不能为空 / name is required")
    name = name.strip()
    if len(name) > 64:
        raise ValidationFailed("姓名过长 / name is too long (64 characters at most)")
    return name


def _clean_phone(phone: object) -> str:
    if phone is None:
        return ""
    if not isinstance(phone, str) or len(phone) > 32:
        raise ValidationFailed("手机号格式错误 / phone must be a string of 32 characters at most")
    return phone.strip()


def has_id_number(number: str):
    """The WHERE clause that finds a citizen by (normalized) ID number: through the keyed
    hash, since the number itself is stored encrypted (models/crypto.py)."""
    return Citizen.id_hash == id_lookup(number)


def create_citizen(session: Session, *, name: object, id_number: object, phone: object = None
                   ) -> tuple[Citizen, str]:
    """Register a citizen (green by default) and issue their bearer token."""
    parsed = parse_id_number(id_number)
    citizen_name = clean_name(name)
    if session.exec(select(Citizen.id).where(has_id_number(parsed.value))).first():
        raise Conflict("该身份证号码已登记 / a citizen with this ID number exists")
    token = new_token()
    citizen = Citizen(name=citizen_name, id_number=parsed.value, phone=_clean_phone(phone),
                      token_hash=hash_token(token))
    session.add(citizen)
    session.flush()
    _link_visits(session, citizen)
    session.commit()
    return citizen, token


def _link_visits(session: Session, citizen: Citizen) -> None:
    """A registrar's earlier proxy check-ins of this ID number under this name (an
    unregistered visitor's visits, models/visitors.py) become the new citizen's: exposures
    and traces find them as theirs. Visits under another name stay the visitor's."""
    linked = select(_vi.c.id).where(_vi.c.id_hash == id_lookup(citizen.id_number),
                                    _vi.c.name == citizen.name, _vi.c.citizen_id.is_(None))
    ids = list(session.execute(linked).scalars())
    if not ids:
        return
    session.execute(update(_vi).where(_vi.c.id.in_(ids)).values(citizen_id=citizen.id))
    session.execute(update(_ck).where(_ck.c.visitor_id.in_(ids), _ck.c.citizen_id.is_(None))
                    .values(citizen_id=citizen.id))


def is_minor(citizen: Citizen, today: date | None = None) -> bool:
    return parse_id_number(citizen.id_number).is_minor(today or _today())


def _today() -> date:
    from datetime import datetime

    return datetime.now(BEIJING).date()


def citizen_card(citizen: Citizen) -> dict:
    """GET /api/me: a citizen's own card (masked like everything else that leaves the server)."""
    minor = is_minor(citizen)
    return {
        "id": citizen.id,
        "name_masked": mask_name(citizen.name),
        "id_masked": mask_id_number(citizen.id_number),
        "status": citizen.status,
        "popup_kind": citizen.popup_kind,
        "reason": citizen.reason,
        "status_at": iso(citizen.status_at),
        "minor": minor,
        "photo_label": MINOR_PHOTO_LABEL if minor else None,
    }
