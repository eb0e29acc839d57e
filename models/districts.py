"""Whose district a venue or a person is in, for officials below the city level.

- A venue's district is its `district`.
- A registrar's districts are those of the venues they register (as owner or co-registrar);
  a violation against them, or its lifting, is within a district official's reach only when
  every one of those venues is in the official's district.
- A person's districts, for a per-person status change by ID number: the districts of the
  venues they checked in at within the last RECENT_DAYS days (the tracing horizon) and of
  the venues they register. Nobody has an address on record, so where they were seen is
  where they are "of".
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from models.tables import Checkin, Citizen, Registrar, Venue, utcnow

RECENT_DAYS = 14
_CHUNK = 500


def venue_district(session: Session, venue_id: int) -> str | None:
    return session.exec(select(Venue.district).where(Venue.id == venue_id)).scalar()


def registrar_districts(session: Session, citizen_id: int) -> set[str]:
    owned = select(Venue.district).where(Venue.owner_id == citizen_id)
    named = (select(Venue.district).join(Registrar, Registrar.venue_id == Venue.id)
             .where(Registrar.citizen_id == citizen_id, col(Registrar.active)))
    return {d for (d,) in session.exec(owned.union(named)).all()}


def registrar_in(session: Session, citizen_id: int, district: str) -> bool:
    found = registrar_districts(session, citizen_id)
    return bool(found) and found == {district}


def people_outside(session: Session, id_hashes: list[str], district: str) -> set[str]:
    """The look-up hashes, among those of registered citizens, of people who are not of
    `district` (see the module's rule). Unknown numbers are not reported here: the job
    answers them row by row as for anyone."""
    since = utcnow() - timedelta(days=RECENT_DAYS)
    outside: set[str] = set()
    for start in range(0, len(id_hashes), _CHUNK):
        chunk = id_hashes[start:start + _CHUNK]
        people = dict(session.exec(select(Citizen.id, Citizen.id_hash)
                                   .where(col(Citizen.id_hash).in_(chunk))).all())
        if not people:
            continue
        seen = select(Checkin.citizen_id).join(Venue, Venue.id == Checkin.venue_id).where(
            col(Checkin.citizen_id).in_(people), Venue.district == district,
            col(Checkin.at) >= since)
        owns = select(Venue.owner_id).where(col(Venue.owner_id).in_(people),
                                            Venue.district == district)
        named = (select(Registrar.citizen_id).join(Venue, Venue.id == Registrar.venue_id)
                 .where(col(Registrar.citizen_id).in_(people), Venue.district == district))
        inside = {cid for (cid,) in session.exec(seen.union(owns, named)).all()}
        outside.update(h for cid, h in people.items() if cid not in inside)
    return outside
