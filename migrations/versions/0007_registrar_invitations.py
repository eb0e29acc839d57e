"""co-registrars are invited: registrarinvitation

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 11:30:00

POST /api/venues/{id}/registrars now stores an invitation that the invitee accepts or
declines (models/registrars.py). `invitee_id` has no foreign key on purpose: an invitation
to an id nobody has is stored like any other, so the inviter learns nothing from it.
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.tables

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('registrarinvitation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('venue_id', sa.Integer(), nullable=False),
    sa.Column('inviter_id', sa.Integer(), nullable=False),
    sa.Column('invitee_id', sa.Integer(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', models.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', models.tables.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['inviter_id'], ['citizen.id'], ),
    sa.ForeignKeyConstraint(['venue_id'], ['venue.id'], ),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_registrarinvitation_venue_id', 'registrarinvitation', ['venue_id'],
                    unique=False)
    op.create_index('ix_registrarinvitation_invitee_state', 'registrarinvitation',
                    ['invitee_id', 'state'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_registrarinvitation_invitee_state', table_name='registrarinvitation')
    op.drop_index('ix_registrarinvitation_venue_id', table_name='registrarinvitation')
    op.drop_table('registrarinvitation')
