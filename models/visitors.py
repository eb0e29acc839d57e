"""Unregistered visitors: what a registrar's proxy check-in records for anyone who is not a
registered citizen under the name and ID number typed.

A proxy check-in never creates a citizen (nobody can claim an ID number through a registrar)
and never tells the registrar whether an ID number is registered: a wrong name and an
unregistered number are both recorded the same way, as a visit of a `Visitor` (one per ID
number and name given, the number encrypted like a citizen's). The health authority finds
those visits by ID number (trace) and counts them in exposures; when a citizen registers
with that number and name, the visits become theirs (models/citizens.create_citizen).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from sqlmodel import select as orm_select

from models.audit import PROXY_CHECKIN, record
from models.citizens import clean_name
from models.crypto import id_lookup
from models.idnumber import parse_id_number
from models.masking import mask_id_number, mask_name
from models.stays import overlapping
from models.tables import Checkin, Citizen, Logbook, Visitor

PROXY_PURPOSE = "代登记 / proxy check-in by a registrar"

_ck = Checkin.__table__
_vi = Visitor.__table__


@dataclass(frozen=True)
class ProxyVisitor:
    """Whom a proxy check-in records: a citizen, or an unregistered visitor."""

    citizen_id: int | None
    visitor_id: int | None


def proxy_visitor(session: Session, *, registrar: Citizen, logbook: Logbook, name: object,
                  id_number: object) -> ProxyVisitor:
    """The person a registrar checks in by name and ID number: the registered citizen when
    both are theirs, else an unregistered visitor (found or made) — whichever part is wrong,
    the same path and the same answer. Every attempt is audited, like 他人代查. A malformed
    number (check digit) is still refused: that is its format, not its registration."""
    number = parse_id_number(id_number).value
    given = clean_name(name)
    id_hash = id_lookup(number)
    citizen = session.exec(orm_select(Citizen).where(Citizen.id_hash == id_hash)).first()
    match = citizen is not None and citizen.name == given
    visitor_id = None if match else _visitor_id(session, given, number, id_hash)
    record(session, actor=f"citizen:{registrar.id}", action=PROXY_CHECKIN,
           target=mask_id_number(number), citizen_id=citizen.id if match else None,
           purpose=PROXY_PURPOSE,
           detail={"found": match, "visitor_id": visitor_id, "venue_id": logbook.venue_id,
                   "logbook_id": logbook.id, "caller_masked": mask_name(registrar.name)})
    session.commit()
    return ProxyVisitor(citizen.id if match else None, visitor_id)


def _visitor_id(session: Session, name: str, number: str, id_hash: str) -> int:
    """The visitor (ID number, name) row's id, made on first sight; a concurrent maker's row
    (unique (id_hash, name)) is taken when the insert loses the race."""
    query = select(_vi.c.id).where(_vi.c.id_hash == id_hash, _vi.c.name == name)
    found = session.execute(query).scalar()
    if found is not None:
        return found
    visitor = Visitor(name=name, id_number=number)
    session.add(visitor)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return session.execute(query).scalar_one()
    return visitor.id


def exposed_visitors(conn: Connection, *, venue_id: int, start: datetime, until: datetime
                     ) -> int:
    """Unregistered visitors (not linked to a citizen) whose stay at the venue overlaps the
    window (models/stays.overlapping): an exposure cannot give them a status, so its result
    counts them."""
    return conn.execute(select(func.count(func.distinct(_ck.c.visitor_id))).where(
        *overlapping(conn, venue_id, start, until), _ck.c.citizen_id.is_(None))).scalar_one()


def purge_visitors(engine: Engine, *, before: datetime) -> int:
    """Delete visitors first seen before `before` who have no check-in left (retention):
    an unregistered visitor is kept as long as their visits, no longer."""
    with engine.begin() as conn:
        return conn.execute(delete(_vi).where(
            _vi.c.created_at < before,
            ~exists().where(_ck.c.visitor_id == _vi.c.id))).rowcount
