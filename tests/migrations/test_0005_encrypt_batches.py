"""Migration 0005 on batches written at 0004: every request sealed, every per-row error's ID
number masked, the plaintext column gone (and no page of the table keeps it), and back."""

from __future__ import annotations

import json
from datetime import date, timedelta

import sqlalchemy as sa
from alembic import command

from models.crypto import decrypt_json
from models.db import make_engine
from models.idnumber import make_id_number
from models.masking import mask_id_number
from models.migrate import alembic_config
from models.tables import Citizen, UTCDateTime, utcnow

BATCHES = 450  # more than two of the migration's 200-row rounds

_batch = sa.table("batch", sa.column("id", sa.Integer()), sa.column("kind", sa.String()),
                  sa.column("actor", sa.String()), sa.column("payload", sa.JSON()),
                  sa.column("result", sa.JSON(none_as_null=True)),
                  sa.column("created_at", UTCDateTime()))
_change = sa.table("statuschange", sa.column("batch_id", sa.Integer()),
                   sa.column("citizen_id", sa.Integer()), sa.column("old_status", sa.String()),
                   sa.column("new_status", sa.String()), sa.column("reason", sa.String()),
                   sa.column("at", UTCDateTime()))




def _number(i: int) -> str:
    return make_id_number("110101", date(1950, 1, 1) + timedelta(days=i // 1000), i % 1000)


def _seed_at_0004(eng) -> tuple[dict[int, dict], dict[int, dict | None], list[str]]:
    """Status-change batches whose requests and per-row errors hold ID numbers in clear (one
    big enough for PostgreSQL to keep out of line), an exposure, an unfinished batch, and
    history rows referencing them."""
    now = utcnow()
    rows, numbers = [], []
    for i in range(BATCHES):
        number = _number(i)
        numbers.append(number)
        size = 2000 if i == 7 else 2
        payload = {"changes": [{"id_number": _number(10_000 + i * 2000 + k), "status": "red",
                                "reason": "密接"} for k in range(size)]
                   + [{"id_number": number, "status": "red", "reason": "x"}]}
        numbers.extend(c["id_number"] for c in payload["changes"][:2])
        result = {"total": 3, "applied": 0, "errors": [
            {"row": 0, "id_number": number, "error": "not_found", "message": "查无此人"},
            {"row": 1, "id_number": number[:-1] + "Y", "error": "invalid_id_number",
             "message": "x"},
            {"row": 2, "id_number": None, "error": "validation_error", "message": "x"}]}
        rows.append({"kind": "status_changes", "actor": "official", "payload": payload,
                     "result": result, "created_at": now})
    rows.append({"kind": "exposure", "actor": "official", "payload": {"venue_id": 1},
                 "result": {"venue_id": 1, "total": 0, "errors": []}, "created_at": now})
    rows.append({"kind": "lift", "actor": "official", "payload": {"violation_id": 3},
                 "result": None, "created_at": now})
    with eng.begin() as conn:
        conn.execute(sa.insert(_batch), rows)
        payloads = dict(conn.execute(sa.select(_batch.c.id, _batch.c.payload)).all())
        results = dict(conn.execute(sa.select(_batch.c.id, _batch.c.result)).all())
        citizen = conn.execute(sa.insert(Citizen.__table__).values(
            name="张三", id_number=_number(999_999), phone="", status="red", reason="x",
            status_at=now, created_at=now).returning(Citizen.__table__.c.id)).scalar_one()
        conn.execute(sa.insert(_change), [
            {"batch_id": b, "citizen_id": citizen, "old_status": "green", "new_status": "red",
             "reason": "x", "at": now} for b in list(payloads)[:30]])
    return payloads, results, numbers


def _table_bytes(eng) -> bytes:
    """The batch table as it is on disk (SQLite: the whole file, after a checkpoint;
    PostgreSQL: the table's file and its TOAST table's)."""
    with eng.connect() as conn:
        if eng.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            return open(eng.url.database, "rb").read()
        conn.exec_driver_sql("CHECKPOINT")
        return conn.exec_driver_sql(
            "SELECT pg_read_binary_file(pg_relation_filepath('batch')) || "
            "pg_read_binary_file(pg_relation_filepath(reltoastrelid)) FROM pg_class "
            "WHERE relname = 'batch'").scalar_one()


def test_upgrade_seals_payloads_masks_results_and_downgrade_restores(url):
    config = alembic_config(url)
    command.upgrade(config, "0004")
    eng = make_engine(url)
    try:
        payloads, results, numbers = _seed_at_0004(eng)
        sample = numbers[::37]
        # The check can see them. One read: each is a CHECKPOINT on PostgreSQL, which flushes
        # every database of the server.
        before = _table_bytes(eng)
        assert all(n.encode() in before for n in sample)
        command.upgrade(config, "0005")

        columns = {c["name"] for c in sa.inspect(eng).get_columns("batch")}
        assert "payload" not in columns and "payload_enc" in columns
        with eng.connect() as conn:
            stored = conn.execute(sa.text("SELECT id, payload_enc, result FROM batch")).all()
            assert conn.execute(sa.text("SELECT count(*) FROM statuschange")).scalar_one() == 30
            if eng.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert len(stored) == len(payloads)
        for batch_id, enc, result in stored:
            assert decrypt_json(enc) == payloads[batch_id]
            result = json.loads(result) if isinstance(result, str) else result
            before = results[batch_id]
            if before is None or not before.get("errors"):
                assert result == before
                continue
            number = before["errors"][0]["id_number"]
            assert [e["id_number"] for e in result["errors"]] == [
                mask_id_number(number), number[:2] + "*" * 16, None]
            assert [e["row"] for e in result["errors"]] == [0, 1, 2]
        disk = _table_bytes(eng)
        assert not [n for n in sample if n.encode() in disk]

        command.downgrade(config, "0004")
        with eng.connect() as conn:
            back = dict(conn.execute(sa.select(_batch.c.id, _batch.c.payload)).all())
        assert back == payloads
        command.upgrade(config, "head")
        with eng.connect() as conn:
            enc = conn.execute(sa.text("SELECT payload_enc FROM batch WHERE id = :i"),
                               {"i": min(payloads)}).scalar_one()
            again = conn.execute(sa.select(_batch.c.result).where(
                _batch.c.id == min(payloads))).scalar_one()
        assert decrypt_json(enc) == payloads[min(payloads)]
        assert again["errors"][0]["id_number"] == mask_id_number(numbers[0])  # not re-masked
    finally:
        eng.dispose()
