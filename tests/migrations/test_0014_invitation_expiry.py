"""Migration 0014 on invitations made before they expired: each gets its creation time plus
seven days (an old one reads as expired at once, a recent one keeps the rest of its week),
the column is required afterwards, and downgrade drops it without bringing a replaced
(expired) invitation back to life."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from sqlmodel import Session, select

from models.db import make_engine
from models.migrate import alembic_config
from models.registrars import invitation_public
from models.tables import Citizen, RegistrarInvitation, UTCDateTime, Venue, utcnow

_invitation = sa.table("registrarinvitation", sa.column("id", sa.Integer()),
                       sa.column("venue_id", sa.Integer()), sa.column("inviter_id", sa.Integer()),
                       sa.column("invitee_id", sa.Integer()), sa.column("state", sa.String()),
                       sa.column("created_at", UTCDateTime()))


def test_old_invitations_get_a_week_from_when_they_were_made(url):
    config = alembic_config(url)
    command.upgrade(config, "0013")
    eng = make_engine(url)
    now = utcnow()
    try:
        with Session(eng) as session:  # an inviter and a venue (tables 0014 leaves alone)
            inviter = Citizen(name="李四", id_number="11010519491231002X", phone="13800000000")
            session.add(inviter)
            session.flush()
            venue = Venue(name="场所", address="某路1号", district="朝阳区", category="office",
                          owner_id=inviter.id)
            session.add(venue)
            session.commit()
            inviter_id, venue_id = inviter.id, venue.id
        with eng.begin() as conn:
            conn.execute(sa.insert(_invitation), [
                {"venue_id": venue_id, "inviter_id": inviter_id, "invitee_id": 501,
                 "state": "pending", "created_at": now - timedelta(days=30)},
                {"venue_id": venue_id, "inviter_id": inviter_id, "invitee_id": 502,
                 "state": "pending", "created_at": now - timedelta(days=2)},
                {"venue_id": venue_id, "inviter_id": inviter_id, "invitee_id": 503,
                 "state": "accepted", "created_at": now - timedelta(days=40)},
            ])
        command.upgrade(config, "0014")
        with Session(eng) as session:
            rows = session.exec(select(RegistrarInvitation).order_by(RegistrarInvitation.id)).all()
            assert [r.expires_at - r.created_at for r in rows] == [timedelta(days=7)] * 3
            assert [invitation_public(r)["state"] for r in rows] == [
                "expired", "pending", "accepted"]
        with pytest.raises(sa.exc.IntegrityError), eng.begin() as conn:
            conn.execute(sa.insert(_invitation).values(
                venue_id=venue_id, inviter_id=inviter_id, invitee_id=504, state="pending",
                created_at=now))  # no expires_at: refused

        with eng.begin() as conn:
            conn.execute(sa.text("UPDATE registrarinvitation SET state = 'expired' "
                                 "WHERE invitee_id = 501"))
        command.downgrade(config, "0013")
        with eng.connect() as conn:
            cols = {c["name"] for c in sa.inspect(conn).get_columns("registrarinvitation")}
            assert "expires_at" not in cols
            states = conn.execute(sa.select(_invitation.c.invitee_id, _invitation.c.state)
                                  .order_by(_invitation.c.id)).all()
            assert [tuple(s) for s in states] == [(501, "expired"), (502, "pending"),
                                                  (503, "accepted")]
        command.upgrade(config, "head")
    finally:
        eng.dispose()
