"""ID numbers encrypted at rest: citizen.id_number → id_number_enc (AES-256-GCM) + id_hash (HMAC)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 06:00:00

Adds the two columns, encrypts every existing row in batches with the process's keys
(models/crypto.py: set SCANBOOK_DATA_KEY before running this in production), then drops the
plaintext column. The table is rewritten so that the old row versions holding the numbers in
clear go with the old file: PostgreSQL CLUSTERs it, SQLite's batch mode copies it (with
secure_delete, the freed pages are zeroed). Copies made before — backups, PostgreSQL's WAL
archive, SQLite's -wal file until its next checkpoint — still hold them: rotate them.

Fine for a young database inside one transaction; for millions of citizens it is an offline
step (measured with 200,000 citizens: ~32,000 rows a second on PostgreSQL, ~80,000 on SQLite;
the table is locked throughout).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.crypto import keyring

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_BATCH = 5000
_citizen = sa.table('citizen', sa.column('id', sa.Integer()),
                    sa.column('id_number', sa.String()),
                    sa.column('id_number_enc', sa.LargeBinary()),
                    sa.column('id_hash', sa.String()))
# PostgreSQL: one UPDATE … FROM unnest(arrays) a batch instead of 5,000 single-row UPDATEs.
_PG_ENCRYPT = sa.text(
    "UPDATE citizen SET id_number_enc = u.enc, id_hash = u.hash, id_number = NULL "
    "FROM unnest(CAST(:ids AS integer[]), CAST(:encs AS bytea[]), CAST(:hashes AS varchar[])) "
    "AS u (id, enc, hash) WHERE citizen.id = u.id")
_PG_DECRYPT = sa.text(
    "UPDATE citizen SET id_number = u.number FROM unnest(CAST(:ids AS integer[]), "
    "CAST(:numbers AS varchar[])) AS u (id, number) WHERE citizen.id = u.id")
_SQLITE_ENCRYPT = (sa.update(_citizen).where(_citizen.c.id == sa.bindparam('row_id'))
                   .values(id_number_enc=sa.bindparam('enc'), id_hash=sa.bindparam('hash')))
_SQLITE_DECRYPT = (sa.update(_citizen).where(_citizen.c.id == sa.bindparam('row_id'))
                   .values(id_number=sa.bindparam('number')))


def _batches(conn, column):
    """(id, value) of every citizen, _BATCH rows at a time in id order."""
    last = 0
    while True:
        rows = conn.execute(sa.select(_citizen.c.id, column).where(_citizen.c.id > last)
                            .order_by(_citizen.c.id).limit(_BATCH)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _sqlite_foreign_keys_off(conn) -> None:
    """Batch mode recreates `citizen`, which every other table references: SQLite's DROP
    TABLE would check those references (and fail). The pragma only takes effect outside a
    transaction, which is where each revision starts (SQLite DDL is not transactional, so
    Alembic commits per revision); env.py turns enforcement back on after the run."""
    conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if conn.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("could not turn SQLite foreign keys off for the table rebuild")
    conn.exec_driver_sql("PRAGMA secure_delete=ON")  # zero the pages the old table frees


def _sqlite_check_references(conn) -> None:
    bad = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if bad:
        raise RuntimeError(f"foreign keys broken by the citizen rebuild: {bad[:5]}")


def upgrade() -> None:
    conn = op.get_bind()
    postgres = conn.dialect.name == 'postgresql'
    if not postgres:
        _sqlite_foreign_keys_off(conn)
    with op.batch_alter_table('citizen') as batch_op:
        batch_op.add_column(sa.Column('id_number_enc', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('id_hash', sa.String(length=64), nullable=True))
    if postgres:
        op.alter_column('citizen', 'id_number', nullable=True)  # cleared as rows are encrypted
    for rows in _batches(conn, _citizen.c.id_number):
        ring = keyring()  # read only when there is a row to encrypt
        encs = [ring.encrypt(number) for _, number in rows]
        hashes = [ring.lookup(number) for _, number in rows]
        if postgres:
            conn.execute(_PG_ENCRYPT, {"ids": [r[0] for r in rows], "encs": encs,
                                       "hashes": hashes})
        else:
            conn.execute(_SQLITE_ENCRYPT, [{"row_id": r[0], "enc": e, "hash": h}
                                           for r, e, h in zip(rows, encs, hashes, strict=True)])
    with op.batch_alter_table('citizen', recreate='auto') as batch_op:
        batch_op.alter_column('id_number_enc', existing_type=sa.LargeBinary(), nullable=False)
        batch_op.alter_column('id_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column('id_number')  # PostgreSQL: its unique constraint goes with it
        batch_op.create_index('ix_citizen_id_hash', ['id_hash'], unique=True)
    if postgres:
        # DROP COLUMN only hides it: rewrite the table so no page keeps the numbers in clear.
        op.execute('CLUSTER citizen USING citizen_pkey')
        op.execute('ANALYZE citizen')
    else:
        _sqlite_check_references(conn)


def downgrade() -> None:
    conn = op.get_bind()
    postgres = conn.dialect.name == 'postgresql'
    if not postgres:
        _sqlite_foreign_keys_off(conn)
    with op.batch_alter_table('citizen') as batch_op:
        batch_op.add_column(sa.Column('id_number', sa.String(length=18), nullable=True))
    for rows in _batches(conn, _citizen.c.id_number_enc):
        ring = keyring()
        numbers = [ring.decrypt(bytes(enc)) for _, enc in rows]
        if postgres:
            conn.execute(_PG_DECRYPT, {"ids": [r[0] for r in rows], "numbers": numbers})
        else:
            conn.execute(_SQLITE_DECRYPT, [{"row_id": r[0], "number": n}
                                           for r, n in zip(rows, numbers, strict=True)])
    with op.batch_alter_table('citizen', recreate='auto') as batch_op:
        batch_op.alter_column('id_number', existing_type=sa.String(length=18), nullable=False)
        batch_op.create_unique_constraint('citizen_id_number_key', ['id_number'])
        batch_op.drop_index('ix_citizen_id_hash')
        batch_op.drop_column('id_hash')
        batch_op.drop_column('id_number_enc')
    if not postgres:
        _sqlite_check_references(conn)
