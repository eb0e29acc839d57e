"""Batch requests encrypted at rest: batch.payload → payload_enc (one AES-GCM blob a batch);
ID numbers in stored results masked

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 09:00:00

An official's status-change request lists residents' ID numbers, and per-row errors in the
result echoed them: both sat in `batch` in clear. Every existing payload is sealed with the
process's keys (models/crypto.encrypt_json: set SCANBOOK_DATA_KEY before running this in
production), the `id_number` of every per-row error in a stored result is masked
(models/masking.mask_submitted_id), then the plaintext column is dropped and the table
rewritten, as 0004 does for `citizen` (PostgreSQL CLUSTER, SQLite batch copy with
secure_delete). Copies made before — backups, WAL archives, SQLite's -wal file until its next
checkpoint, RQ's job results in Redis until they expire — still hold the numbers.

`downgrade` decrypts the payloads back into a JSON column; masked results stay masked.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.crypto import decrypt_json, encrypt_json
from models.masking import mask_submitted_id

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_BATCH = 200  # rows a round: a status-change payload may be megabytes
_batch = sa.table('batch', sa.column('id', sa.Integer()), sa.column('payload', sa.JSON()),
                  sa.column('payload_enc', sa.LargeBinary()), sa.column('result', sa.JSON()),
                  sa.column('result_masked', sa.JSON(none_as_null=True)))
_SEAL = (sa.update(_batch).where(_batch.c.id == sa.bindparam('row_id'))
         .values(payload_enc=sa.bindparam('enc'), result_masked=sa.bindparam('res')))
_OPEN = (sa.update(_batch).where(_batch.c.id == sa.bindparam('row_id'))
         .values(payload=sa.bindparam('plain', type_=sa.JSON())))


def _rounds(conn, *columns):
    """(id, *columns) of every batch, _BATCH rows at a time in id order."""
    last = 0
    while True:
        rows = conn.execute(sa.select(_batch.c.id, *columns).where(_batch.c.id > last)
                            .order_by(_batch.c.id).limit(_BATCH)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def masked_result(result):
    """A stored result with every per-row error's ID number masked (masked ones kept)."""
    if not isinstance(result, dict) or not isinstance(result.get('errors'), list):
        return result
    errors = []
    for error in result['errors']:
        if isinstance(error, dict) and 'id_number' in error:
            number = error['id_number']
            if not (isinstance(number, str) and '*' in number):
                error = {**error, 'id_number': mask_submitted_id(number)}
        errors.append(error)
    return {**result, 'errors': errors}


def _sqlite_foreign_keys_off(conn) -> None:
    """Batch mode recreates `batch`, which statuschange and notice reference (see 0004);
    env.py turns enforcement back on after the run."""
    conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if conn.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("could not turn SQLite foreign keys off for the table rebuild")
    conn.exec_driver_sql("PRAGMA secure_delete=ON")  # zero the pages the old table frees


def _sqlite_check_references(conn) -> None:
    bad = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if bad:
        raise RuntimeError(f"foreign keys broken by the batch rebuild: {bad[:5]}")


def upgrade() -> None:
    conn = op.get_bind()
    postgres = conn.dialect.name == 'postgresql'
    if not postgres:
        _sqlite_foreign_keys_off(conn)
    # The masked results go into a new column too: PostgreSQL's CLUSTER, in this transaction,
    # keeps the row versions this transaction replaced, with every column but dropped ones.
    with op.batch_alter_table('batch') as batch_op:
        batch_op.add_column(sa.Column('payload_enc', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('result_masked', sa.JSON(), nullable=True))
    for rows in _rounds(conn, _batch.c.payload, _batch.c.result):
        conn.execute(_SEAL, [{"row_id": row_id, "enc": encrypt_json(payload),
                              "res": masked_result(result)}
                             for row_id, payload, result in rows])
    # SQLite: copy the table (its old pages zeroed); PostgreSQL: ALTER, then CLUSTER below.
    with op.batch_alter_table('batch', recreate='auto' if postgres else 'always') as batch_op:
        batch_op.alter_column('payload_enc', existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column('payload')
        batch_op.drop_column('result')
        batch_op.alter_column('result_masked', new_column_name='result',
                              existing_type=sa.JSON(), existing_nullable=True)
    if postgres:
        # DROP COLUMN only hides it: rewrite the table (and its TOAST table) so no page keeps
        # the requests or the results in clear.
        op.execute('CLUSTER batch USING batch_pkey')
        op.execute('ANALYZE batch')
    else:
        _sqlite_check_references(conn)


def downgrade() -> None:
    conn = op.get_bind()
    postgres = conn.dialect.name == 'postgresql'
    if not postgres:
        _sqlite_foreign_keys_off(conn)
    with op.batch_alter_table('batch') as batch_op:
        batch_op.add_column(sa.Column('payload', sa.JSON(), nullable=True))
    for rows in _rounds(conn, _batch.c.payload_enc):
        conn.execute(_OPEN, [{"row_id": row_id, "plain": decrypt_json(enc)}
                             for row_id, enc in rows])
    with op.batch_alter_table('batch', recreate='auto' if postgres else 'always') as batch_op:
        batch_op.alter_column('payload', existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column('payload_enc')
    if not postgres:
        _sqlite_check_references(conn)
