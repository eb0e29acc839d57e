"""stays: checkin.left_at (a partial index on open stays), checkin.via widened for
"registrar_scan", venue.max_stay_minutes (filled in by category)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 11:00:00

Adding a nullable column and widening a varchar change no rows (PostgreSQL: catalog only, on
the partitioned `checkin` and every partition). Existing check-ins keep `left_at` NULL: the
expiry job (models/stays.close_expired_stays) gives each its venue's limit on its first run.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.tables
from models.stays import DEFAULT_MAX_STAY, MAX_STAY_BY_CATEGORY

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_OPEN = sa.text("left_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table('venue') as batch_op:
        batch_op.add_column(sa.Column('max_stay_minutes', sa.Integer(), nullable=False,
                                      server_default=str(DEFAULT_MAX_STAY)))
    venue = sa.table('venue', sa.column('category', sa.String()),
                     sa.column('max_stay_minutes', sa.Integer()))
    for category, minutes in MAX_STAY_BY_CATEGORY.items():
        if minutes != DEFAULT_MAX_STAY:
            op.execute(venue.update().where(venue.c.category == category)
                       .values(max_stay_minutes=minutes))
    op.add_column('checkin', sa.Column('left_at', models.tables.UTCDateTime(timezone=True),
                                       nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('checkin', 'via', type_=sa.String(16), existing_type=sa.String(8),
                        existing_nullable=False)
    # SQLite does not enforce a varchar's length: nothing to widen there.
    op.create_index('ix_checkin_open', 'checkin', ['venue_id', 'at'], unique=False,
                    sqlite_where=_OPEN, postgresql_where=_OPEN)


def downgrade() -> None:
    op.drop_index('ix_checkin_open', table_name='checkin')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("UPDATE checkin SET via = 'scan' WHERE via = 'registrar_scan'")
        op.alter_column('checkin', 'via', type_=sa.String(8), existing_type=sa.String(16),
                        existing_nullable=False)
    with op.batch_alter_table('checkin') as batch_op:
        batch_op.drop_column('left_at')
    with op.batch_alter_table('venue') as batch_op:
        batch_op.drop_column('max_stay_minutes')
