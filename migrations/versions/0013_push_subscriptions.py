"""push subscriptions: push_subscription (Web Push to a citizen's browsers, docs/push.md)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 14:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.tables

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'pushsubscription',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('citizen_id', sa.Integer(), nullable=False),
        sa.Column('endpoint', sa.String(length=2048), nullable=False),
        sa.Column('p256dh', sa.String(length=100), nullable=False),
        sa.Column('auth', sa.String(length=32), nullable=False),
        sa.Column('created_at', models.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['citizen_id'], ['citizen.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('endpoint'),
    )
    op.create_index('ix_pushsubscription_citizen_id', 'pushsubscription', ['citizen_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_pushsubscription_citizen_id', table_name='pushsubscription')
    op.drop_table('pushsubscription')
