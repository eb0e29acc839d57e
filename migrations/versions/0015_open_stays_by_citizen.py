"""open stays by citizen: a partial index on checkin (citizen_id, at) WHERE left_at IS NULL

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 14:30:00

Every check-in batch looks up its citizens' open stays to end them (models/stays.py
end_stays_by_arrivals). Without this index PostgreSQL read every open stay of the last day and
kept the batch's citizens (one batch of 32 scans: 5,788 rows read for 32 kept). Only rows
still without a departure are in it, so it stays small. (PostgreSQL: created on the
partitioned table and each partition, under a lock that holds writes for as long as it takes:
run it between rushes.)
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

_OPEN = sa.text("left_at IS NULL")


def upgrade() -> None:
    op.create_index('ix_checkin_citizen_open', 'checkin', ['citizen_id', 'at'], unique=False,
                    sqlite_where=_OPEN, postgresql_where=_OPEN)


def downgrade() -> None:
    op.drop_index('ix_checkin_citizen_open', table_name='checkin')
