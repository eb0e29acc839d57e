"""Migrations 0006 (unregistered visitors: checkin.citizen_id nullable, checkin.visitor_id)
and 0007 (registrar invitations) on a database with check-ins written at 0005, and back."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import IntegrityError

from models.crypto import encrypt_id, id_lookup
from models.db import make_engine
from models.idnumber import make_id_number
from models.migrate import alembic_config
from models.tables import UTCDateTime, utcnow

NUMBERS = [make_id_number("110101", date(1960, 1, 1), i) for i in range(1, 4)]
_checkin_cols = ("venue_id", "logbook_id", "citizen_id", "helper_id", "via", "status",
                 "popup_kind", "alert", "minor", "name_masked", "id_masked", "at")




def _seed_at_0005(eng) -> None:
    now = utcnow()
    citizen = sa.table("citizen", *(sa.column(c) for c in (
        "id", "name", "id_number_enc", "id_hash", "phone", "status", "reason", "token_hash")),
        sa.column("status_at", UTCDateTime()), sa.column("created_at", UTCDateTime()))
    venue = sa.table("venue", *(sa.column(c) for c in (
        "id", "name", "address", "district", "category", "owner_id")),
        sa.column("created_at", UTCDateTime()))
    logbook = sa.table("logbook", *(sa.column(c) for c in (
        "id", "venue_id", "label", "code", "state", "created_by")),
        sa.column("created_at", UTCDateTime()), sa.column("state_at", UTCDateTime()))
    checkin = sa.table("checkin", *(sa.column(c) for c in _checkin_cols[:-1]),
                       sa.column("at", UTCDateTime()))
    with eng.begin() as conn:
        conn.execute(sa.insert(citizen), [
            {"id": i, "name": f"居民{i}", "id_number_enc": encrypt_id(n),
             "id_hash": id_lookup(n), "phone": "", "status": "green", "reason": "",
             "token_hash": None, "status_at": now, "created_at": now}
            for i, n in enumerate(NUMBERS, start=1)])
        conn.execute(sa.insert(venue).values(id=1, name="店", address="路", district="东城区",
                                             category="shop", owner_id=1, created_at=now))
        conn.execute(sa.insert(logbook).values(id=1, venue_id=1, label="门", code="c0de",
                                               state="active", created_by=1, created_at=now,
                                               state_at=now))
        conn.execute(sa.insert(checkin), [
            {"venue_id": 1, "logbook_id": 1, "citizen_id": i, "helper_id": None, "via": "scan",
             "status": "green", "popup_kind": None, "alert": False, "minor": False,
             "name_masked": "居*", "id_masked": "11**************01", "at": now}
            for i in (1, 2, 3)])


def _visit(conn, visitor_id: int | None) -> None:
    conn.execute(sa.text(
        "INSERT INTO checkin (venue_id, logbook_id, citizen_id, visitor_id, via, status, alert, "
        "minor, name_masked, id_masked, at) VALUES (1, 1, NULL, :v, 'proxy', 'unknown', "
        ":t, :f, '访*', '11**************01', :at)"),
        {"v": visitor_id, "t": True, "f": False, "at": utcnow().replace(tzinfo=None)})


def test_upgrade_keeps_check_ins_allows_visitors_and_downgrade_drops_them(url):
    config = alembic_config(url)
    command.upgrade(config, "0005")
    eng = make_engine(url)
    try:
        _seed_at_0005(eng)
        command.upgrade(config, "0007")
        columns = {c["name"]: c for c in sa.inspect(eng).get_columns("checkin")}
        assert columns["citizen_id"]["nullable"] and "visitor_id" in columns
        assert {"visitor", "registrarinvitation"} <= set(sa.inspect(eng).get_table_names())
        with eng.begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM checkin")).scalar_one() == 3
            conn.execute(sa.text(
                "INSERT INTO visitor (id, name, id_number_enc, id_hash, created_at) "
                "VALUES (1, '访客', :enc, :h, :at)"),
                {"enc": encrypt_id(NUMBERS[0]), "h": id_lookup(NUMBERS[0]),
                 "at": utcnow().replace(tzinfo=None)})
            _visit(conn, 1)
        with pytest.raises(IntegrityError), eng.begin() as conn:
            _visit(conn, None)  # every check-in is someone's
        if eng.dialect.name == "sqlite":
            with eng.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []

        command.downgrade(config, "0005")
        columns = {c["name"]: c for c in sa.inspect(eng).get_columns("checkin")}
        assert not columns["citizen_id"]["nullable"] and "visitor_id" not in columns
        with eng.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM checkin")).scalar_one() == 3
        command.upgrade(config, "head")
    finally:
        eng.dispose()
