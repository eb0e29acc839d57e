"""unregistered visitors: proxy check-ins never create citizens

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 11:00:00

A registrar's proxy check-in of a (name, ID number) that is not a registered citizen is
recorded as a visit of a `visitor` (ID number encrypted like a citizen's, with its keyed
hash), not as a new citizen. `checkin.citizen_id` becomes nullable and `checkin.visitor_id`
names the visitor; a check constraint keeps every check-in someone's. On PostgreSQL the
columns, constraint and partial index go onto the partitioned parent (every partition gets
them); SQLite rebuilds `checkin` (batch mode): an offline step for a large SQLite database.
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.tables

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('visitor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('id_number_enc', models.tables.EncryptedIdNumber(), nullable=False),
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('citizen_id', sa.Integer(), nullable=True),
    sa.Column('created_at', models.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizen.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('id_hash', 'name'),
    )
    op.create_index('ix_visitor_id_hash', 'visitor', ['id_hash'], unique=False)
    op.create_index('ix_visitor_citizen_id', 'visitor', ['citizen_id'], unique=False)
    with op.batch_alter_table('checkin', schema=None) as batch_op:
        batch_op.add_column(sa.Column('visitor_id', sa.Integer(), nullable=True))
        batch_op.alter_column('citizen_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key('checkin_visitor_id_fkey', 'visitor', ['visitor_id'], ['id'])
        batch_op.create_check_constraint('ck_checkin_someone',
                                         'citizen_id IS NOT NULL OR visitor_id IS NOT NULL')
    op.create_index('ix_checkin_visitor_id', 'checkin', ['visitor_id'], unique=False,
                    postgresql_where=sa.text('visitor_id IS NOT NULL'),
                    sqlite_where=sa.text('visitor_id IS NOT NULL'))


def downgrade() -> None:
    # Visitors' visits have no citizen to fall back on: they go with the visitors.
    op.execute("DELETE FROM checkin WHERE citizen_id IS NULL")
    op.drop_index('ix_checkin_visitor_id', table_name='checkin')
    with op.batch_alter_table('checkin', schema=None) as batch_op:
        batch_op.drop_constraint('ck_checkin_someone', type_='check')
        batch_op.drop_constraint('checkin_visitor_id_fkey', type_='foreignkey')
        batch_op.alter_column('citizen_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('visitor_id')
    op.drop_index('ix_visitor_citizen_id', table_name='visitor')
    op.drop_index('ix_visitor_id_hash', table_name='visitor')
    op.drop_table('visitor')
