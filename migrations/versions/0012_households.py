"""households: dependant (a citizen checks registered dependants in with them)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 12:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.tables

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'dependant',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('citizen_id', sa.Integer(), nullable=False),
        sa.Column('dependant_id', sa.Integer(), nullable=False),
        sa.Column('created_at', models.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['citizen_id'], ['citizen.id']),
        sa.ForeignKeyConstraint(['dependant_id'], ['citizen.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('citizen_id', 'dependant_id'),
    )
    op.create_index('ix_dependant_citizen_id', 'dependant', ['citizen_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_dependant_citizen_id', table_name='dependant')
    op.drop_table('dependant')
