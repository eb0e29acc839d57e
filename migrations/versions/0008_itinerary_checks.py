"""itinerary checks: a travel popup's verification, started by the citizen, finished by the
itinerary platform's signed callback; the platform's references are unique (no replay)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 11:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.tables

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('itinerarycheck',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('citizen_id', sa.Integer(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('started_at', models.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', models.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('platform_at', models.tables.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizen.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reference')
    )
    with op.batch_alter_table('itinerarycheck', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_itinerarycheck_citizen_id'), ['citizen_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('itinerarycheck', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_itinerarycheck_citizen_id'))
    op.drop_table('itinerarycheck')
