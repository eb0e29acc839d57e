"""Unregistered visitors (models/visitors.py) at the domain level: whom a proxy check-in
records, linking at registration, the writer's 60 s rule for visitors, retention."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from models.checkins import CheckinRequest, record_checkins
from models.citizens import create_citizen
from models.errors import InvalidIdNumber, ValidationFailed
from models.idnumber import make_id_number
from models.status import VISITOR_STATUS
from models.tables import Audit, Checkin, Citizen, Logbook, Visitor
from models.venues import create_venue
from models.visitors import exposed_visitors, proxy_visitor, purge_visitors

NUMBER = make_id_number("110105", date(1951, 3, 4), 31)


@pytest.fixture
def place(engine):
    with Session(engine) as session:
        owner, _token = create_citizen(session, name="李四",
                                       id_number=make_id_number("110101", date(1980, 1, 1), 1))
        venue = create_venue(session, owner=owner, body={
            "name": "店", "address": "路1号", "district": "朝阳区", "category": "shop"})
        book = Logbook(venue_id=venue.id, label="门", code="code-1", created_by=owner.id)
        session.add(book)
        session.commit()
        return owner.id, venue.id, book.id


def _who(engine, place, name, number):
    owner_id, _venue_id, book_id = place
    with Session(engine) as session:
        return proxy_visitor(session, registrar=session.get(Citizen, owner_id),
                             logbook=session.get(Logbook, book_id), name=name, id_number=number)


def _record(engine, requests, now):
    with engine.connect() as conn:
        results, events, _checkouts = record_checkins(conn, requests, now=now)
        conn.commit()
    return results, events


def test_a_proxy_check_in_finds_the_citizen_only_by_name_and_number(engine, place):
    owner_id, _venue_id, _book_id = place
    with Session(engine) as session:
        citizen, _ = create_citizen(session, name="王五", id_number=NUMBER)
        citizen_id = citizen.id
    assert _who(engine, place, "王五", NUMBER).citizen_id == citizen_id
    wrong = _who(engine, place, "王六", NUMBER)
    assert wrong.citizen_id is None and wrong.visitor_id is not None
    assert _who(engine, place, "王六", NUMBER) == wrong  # one visitor per (number, name)
    with pytest.raises(InvalidIdNumber):
        _who(engine, place, "王六", NUMBER[:-1] + ("1" if NUMBER[-1] == "0" else "0"))
    with pytest.raises(ValidationFailed):
        _who(engine, place, "", NUMBER)
    with Session(engine) as session:
        audits = session.exec(select(Audit.citizen_id, Audit.actor)
                              .where(Audit.action == "proxy_checkin")).all()
        assert sorted(audits, key=str) == sorted(
            [(citizen_id, f"citizen:{owner_id}"), (None, f"citizen:{owner_id}"),
             (None, f"citizen:{owner_id}")], key=str)
        assert session.exec(select(func.count()).select_from(Citizen)).one() == (2,)


def test_a_visitor_visit_is_recorded_with_status_unknown_and_the_60_s_rule(engine, place):
    owner_id, venue_id, book_id = place
    visitor_id = _who(engine, place, "赵老", NUMBER).visitor_id
    now = datetime.now(UTC)
    request = CheckinRequest(citizen_id=None, visitor_id=visitor_id, logbook_id=book_id,
                             via="proxy", helper_id=owner_id)
    results, events = _record(engine, [request, request], now)
    assert results[0].created and not results[1].created
    assert results[0].checkin["id"] == results[1].checkin["id"]
    event = events[0]
    assert (event["status"], event["alert"], event["popup_kind"]) == (VISITOR_STATUS, True, None)
    assert event["name"] == "赵*" and event["id_number"].count("*") == 14
    again, _ = _record(engine, [request], now + timedelta(seconds=61))
    assert again[0].created
    with engine.connect() as conn:
        assert exposed_visitors(conn, venue_id=venue_id, start=now - timedelta(minutes=1),
                                until=now + timedelta(minutes=2)) == 1
        row = conn.execute(select(Checkin.citizen_id, Checkin.visitor_id)).first()
    assert tuple(row) == (None, visitor_id)


def test_registration_links_the_visits_under_the_same_name_only(engine, place):
    _owner_id, _venue_id, book_id = place
    same = _who(engine, place, "钱七", NUMBER).visitor_id
    other = _who(engine, place, "冒名", NUMBER).visitor_id
    now = datetime.now(UTC)
    _record(engine, [CheckinRequest(citizen_id=None, visitor_id=v, logbook_id=book_id,
                                    via="proxy") for v in (same, other)], now)
    with Session(engine) as session:
        citizen, _ = create_citizen(session, name="钱七", id_number=NUMBER)  # no 409
        citizen_id = citizen.id
    with engine.connect() as conn:
        owners = dict(conn.execute(select(Checkin.visitor_id, Checkin.citizen_id)).all())
        linked = dict(conn.execute(select(Visitor.id, Visitor.citizen_id)).all())
    assert owners == {same: citizen_id, other: None}
    assert linked == {same: citizen_id, other: None}
    # The linked visit now counts as the citizen's for the 60 s rule.
    results, _ = _record(engine, [CheckinRequest(citizen_id=citizen_id, logbook_id=book_id,
                                                 via="proxy")], now + timedelta(seconds=5))
    assert not results[0].created


def test_retention_drops_visitors_without_visits(engine, place):
    _owner_id, _venue_id, book_id = place
    kept = _who(engine, place, "有访问", NUMBER).visitor_id
    gone = _who(engine, place, "无访问", NUMBER).visitor_id
    _record(engine, [CheckinRequest(citizen_id=None, visitor_id=kept, logbook_id=book_id,
                                    via="proxy")], datetime.now(UTC))
    assert purge_visitors(engine, before=datetime.now(UTC) - timedelta(days=1)) == 0
    assert purge_visitors(engine, before=datetime.now(UTC) + timedelta(seconds=1)) == 1
    with engine.connect() as conn:
        assert list(conn.execute(select(Visitor.id)).scalars()) == [kept]
    assert gone != kept


def test_every_check_in_belongs_to_someone(engine, place):
    from sqlalchemy.exc import IntegrityError

    _owner_id, venue_id, book_id = place
    with engine.connect() as conn, pytest.raises(IntegrityError):
        conn.execute(Checkin.__table__.insert().values(
            venue_id=venue_id, logbook_id=book_id, citizen_id=None, visitor_id=None,
            via="proxy", status="green", alert=False, minor=False, name_masked="x*",
            id_masked="1" * 18, at=datetime.now(UTC)))
