"""status engine: violations, notices linked to their batch, exposure index, append-only audit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 04:07:35.336832
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.tables

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# The audit log is append-only in the database too, not only in the code. UPDATE is refused
# everywhere; DELETE is refused on PostgreSQL (row triggers; TRUNCATE, an operator's tool,
# stays possible). SQLite keeps DELETE so the test suite can wipe between tests.
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit is append-only';
END;
$$ LANGUAGE plpgsql
"""
_PG_TRIGGER = ("CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
               "FOR EACH ROW EXECUTE FUNCTION audit_append_only()")
_SQLITE_TRIGGER = ("CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit "
                   "BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END")


def upgrade() -> None:
    op.create_table('violation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('citizen_id', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', models.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lifted_at', models.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lifted_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('lift_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizen.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('violation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_violation_citizen_id'), ['citizen_id'], unique=False)

    with op.batch_alter_table('checkin', schema=None) as batch_op:
        batch_op.create_index('ix_checkin_venue_id_at', ['venue_id', 'at'], unique=False)

    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_notice_batch_id'), ['batch_id'], unique=False)
        batch_op.create_foreign_key('fk_notice_batch_id_batch', 'batch', ['batch_id'], ['id'])

    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
        # Status changes rewrite citizen rows in bulk; free space on each page lets PostgreSQL
        # update them in place (HOT: none of the changed columns is indexed) instead of
        # touching all four indexes for every row.
        op.execute('ALTER TABLE citizen SET (fillfactor = 70)')
    else:
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    op.execute('DROP TRIGGER IF EXISTS audit_append_only' +
               (' ON audit' if op.get_bind().dialect.name == 'postgresql' else ''))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION IF EXISTS audit_append_only()')
        op.execute('ALTER TABLE citizen RESET (fillfactor)')

    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.drop_constraint('fk_notice_batch_id_batch', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_notice_batch_id'))
        batch_op.drop_column('batch_id')

    with op.batch_alter_table('checkin', schema=None) as batch_op:
        batch_op.drop_index('ix_checkin_venue_id_at')

    with op.batch_alter_table('violation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_violation_citizen_id'))

    op.drop_table('violation')
