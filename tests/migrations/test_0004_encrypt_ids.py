"""Migration 0004 on a database holding rows written at 0003: every ID number encrypted, the
plaintext column gone (and no page of the table keeps it), references intact, and back."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from models.crypto import decrypt_id, id_lookup
from models.db import make_engine
from models.idnumber import make_id_number
from models.migrate import alembic_config
from models.tables import UTCDateTime, utcnow

PEOPLE = 12_345  # more than two of the migration's 5,000-row batches

_citizen = sa.table("citizen", sa.column("id", sa.Integer()), sa.column("name", sa.String()),
                    sa.column("id_number", sa.String()), sa.column("phone", sa.String()),
                    sa.column("status", sa.String()), sa.column("reason", sa.String()),
                    sa.column("status_at", UTCDateTime()), sa.column("token_hash", sa.String()),
                    sa.column("created_at", UTCDateTime()))




def _number(i: int) -> str:
    return make_id_number("110101", date(1950, 1, 1) + timedelta(days=i // 1000), i % 1000)


def _seed_at_0003(eng) -> dict[int, str]:
    """Citizens, one with a venue, a logbook and check-ins of others (rows that reference
    citizen.id), written with the 0003 schema."""
    now = utcnow()
    with eng.begin() as conn:
        conn.execute(sa.insert(_citizen), [
            {"name": f"居民{i}", "id_number": _number(i), "phone": "", "status": "green",
             "reason": "", "status_at": now, "token_hash": f"h{i}", "created_at": now}
            for i in range(PEOPLE)])
        numbers = dict(conn.execute(sa.select(_citizen.c.id, _citizen.c.id_number)).all())
        owner = min(numbers)
        at = now.replace(tzinfo=None) if eng.dialect.name == "sqlite" else now
        venue = conn.execute(sa.text(
            "INSERT INTO venue (name, address, district, category, owner_id, created_at) "
            "VALUES ('商场', 'x', '东城区', 'mall', :o, :at) RETURNING id"),
            {"o": owner, "at": at}).scalar_one()
        book = conn.execute(sa.text(
            "INSERT INTO logbook (venue_id, label, code, state, created_by, created_at, "
            "state_at) VALUES (:v, '入口', 'code-0004', 'active', :o, :at, :at) RETURNING id"),
            {"v": venue, "o": owner, "at": at}).scalar_one()
        conn.execute(sa.text(
            "INSERT INTO checkin (venue_id, logbook_id, citizen_id, via, status, alert, minor, "
            "name_masked, id_masked, at) VALUES (:v, :b, :c, 'scan', 'green', false, false, "
            "'居*', '11**************34', :at)"),
            [{"v": venue, "b": book, "c": c, "at": at} for c in list(numbers)[1:50]])
    return numbers


def _table_bytes(eng) -> bytes:
    """The citizen table as it is on disk (SQLite: the whole file, after a checkpoint)."""
    with eng.connect() as conn:
        if eng.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            return open(eng.url.database, "rb").read()
        conn.exec_driver_sql("CHECKPOINT")
        return conn.exec_driver_sql(
            "SELECT pg_read_binary_file(pg_relation_filepath('citizen'))").scalar_one()


def test_upgrade_encrypts_existing_rows_and_downgrade_restores_them(url):
    config = alembic_config(url)
    command.upgrade(config, "0003")
    eng = make_engine(url)
    try:
        numbers = _seed_at_0003(eng)
        sample = list(numbers.values())[::97]
        # The check can see them. One read: each is a CHECKPOINT on PostgreSQL, which flushes
        # every database of the server (one a sample took minutes beside other test runs).
        before = _table_bytes(eng)
        assert all(n.encode() in before for n in sample)
        command.upgrade(config, "0004")

        columns = {c["name"] for c in sa.inspect(eng).get_columns("citizen")}
        assert "id_number" not in columns and {"id_number_enc", "id_hash"} <= columns
        indexes = {i["name"]: i for i in sa.inspect(eng).get_indexes("citizen")}
        assert indexes["ix_citizen_id_hash"]["unique"]
        with eng.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, id_number_enc, id_hash FROM citizen")).all()
            assert len(rows) == PEOPLE
            for citizen_id, enc, id_hash in rows:
                assert decrypt_id(enc) == numbers[citizen_id]
                assert id_hash == id_lookup(numbers[citizen_id])
            # the look-up the application makes
            some = numbers[max(numbers)]
            assert conn.execute(sa.text("SELECT id FROM citizen WHERE id_hash = :h"),
                                {"h": id_lookup(some)}).scalar_one() == max(numbers)
        disk = _table_bytes(eng)
        assert not [n for n in sample if n.encode() in disk]

        # references survived the rebuild, and are enforced again
        with eng.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM checkin")).scalar_one() == 49
            if eng.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        with pytest.raises(sa.exc.IntegrityError), eng.begin() as conn:
            conn.execute(sa.text("UPDATE venue SET owner_id = 999999999"))

        command.downgrade(config, "0003")
        with eng.connect() as conn:
            assert dict(conn.execute(sa.text("SELECT id, id_number FROM citizen")).all()
                        ) == numbers
        command.upgrade(config, "head")
        with eng.connect() as conn:
            enc = conn.execute(sa.text("SELECT id_number_enc FROM citizen WHERE id = :i"),
                               {"i": min(numbers)}).scalar_one()
        assert decrypt_id(enc) == numbers[min(numbers)]
    finally:
        eng.dispose()
