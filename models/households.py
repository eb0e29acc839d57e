"""Households: the dependants a citizen checks in with them (a child, an elderly parent).

A citizen adds a dependant once, by the dependant's name and ID number, and only a registered
citizen under exactly that name and number can be added: nobody claims an ID number that is
not someone's. A wrong name and an unknown number get the same answer (as 他人代查 does), so
the form cannot be used to learn who is registered. Every attempt is audited. Afterwards one
scan checks in the group (web/api_citizen.check_in): each member gets a check-in of their own,
with their own status and minor label, made "with" the helper (`helper_id`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlmodel import Session
from sqlmodel import select as orm_select

from models.audit import record
from models.citizens import clean_name, has_id_number, is_minor
from models.errors import Conflict, NotFound, ValidationFailed
from models.idnumber import parse_id_number
from models.masking import mask_id_number, mask_name
from models.tables import Citizen, Dependant

MAX_DEPENDANTS = 10
ADD_DEPENDANT = "add_dependant"
_d, _c = Dependant.__table__, Citizen.__table__


def add_dependant(session: Session, *, helper_id: int, name: object, id_number: object
                  ) -> dict:
    """Link the registered citizen with this name and ID number to the helper's household."""
    number = parse_id_number(id_number).value
    given = clean_name(name)
    person = session.exec(orm_select(Citizen).where(has_id_number(number))).first()
    match = person is not None and person.name == given
    record(session, actor=f"citizen:{helper_id}", action=ADD_DEPENDANT,
           target=mask_id_number(number), citizen_id=person.id if match else None,
           purpose="添加同行家人 / add a dependant", detail={"found": match})
    session.commit()
    if not match:
        raise NotFound("姓名与身份证号码不匹配或查无此人 / no person with this name and ID number")
    if person.id == helper_id:
        raise ValidationFailed("不能添加自己 / you cannot add yourself")
    links = session.exec(orm_select(Dependant).where(Dependant.citizen_id == helper_id)).all()
    if any(link.dependant_id == person.id for link in links):
        raise Conflict("已在同行家人中 / already one of your dependants")
    if len(links) >= MAX_DEPENDANTS:
        raise ValidationFailed(f"同行家人最多{MAX_DEPENDANTS}位 / at most {MAX_DEPENDANTS} "
                               "dependants")
    link = Dependant(citizen_id=helper_id, dependant_id=person.id)
    session.add(link)
    session.commit()
    return _public(link.id, person)


def _public(link_id: int, person: Citizen) -> dict:
    minor = is_minor(person)
    return {"id": link_id, "name_masked": mask_name(person.name),
            "id_masked": mask_id_number(person.id_number), "minor": minor,
            "status": person.status,
            "popup_kind": person.popup_kind}


def list_dependants(session: Session, *, helper_id: int) -> list[dict]:
    rows = session.exec(orm_select(Dependant, Citizen)
                        .join(Citizen, Citizen.id == Dependant.dependant_id)
                        .where(Dependant.citizen_id == helper_id).order_by(Dependant.id)).all()
    return [_public(link.id, person) for link, person in rows]


def remove_dependant(session: Session, *, helper_id: int, link_id: int) -> None:
    link = session.get(Dependant, link_id)
    if link is None or link.citizen_id != helper_id:
        raise NotFound("没有这位同行家人 / no such dependant")
    session.delete(link)
    session.commit()


def dependant_ids(conn: Connection, *, helper_id: int, link_ids: object) -> list[int]:
    """The citizens behind the helper's own household links `link_ids` (a scan's
    `dependants`); NotFound for a link that is not theirs."""
    if (not isinstance(link_ids, list) or len(link_ids) > MAX_DEPENDANTS
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in link_ids)):
        raise ValidationFailed("dependants 须为同行家人编号的列表 / dependants must be a list "
                               "of your dependants' ids")
    wanted = sorted(set(link_ids))
    if not wanted:
        return []
    found = dict(conn.execute(select(_d.c.id, _d.c.dependant_id).where(
        _d.c.citizen_id == helper_id, _d.c.id.in_(wanted))).all())
    if len(found) != len(wanted):
        raise NotFound("没有这位同行家人 / no such dependant")
    return [found[i] for i in wanted]
