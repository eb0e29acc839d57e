"""partition checkin by day (PostgreSQL): RANGE (at), primary key (id, at), a default partition

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 05:00:00

PostgreSQL only; SQLite keeps its single table (a no-op there). The existing rows are copied
into the new partitioned table inside the migration's transaction: fine for a young database,
an offline step for a large one. Retention then drops whole days (models/partitions.py).
"""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.tables
from models.partitions import DEFAULT_PARTITION, beijing_day, ensure_partitions
from models.tables import utcnow

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_COLUMNS = ("id, venue_id, logbook_id, citizen_id, helper_id, via, status, popup_kind, alert, "
            "minor, name_masked, id_masked, at")
_INDEXES = {
    'ix_checkin_at': ['at'],
    'ix_checkin_citizen_logbook_at': ['citizen_id', 'logbook_id', 'at'],
    'ix_checkin_logbook_id_id': ['logbook_id', 'id'],
    'ix_checkin_venue_id_id': ['venue_id', 'id'],
    'ix_checkin_venue_id_at': ['venue_id', 'at'],
}
# Rows older than this get no day partition of their own (they wait in the default partition
# for the retention job): a stray ancient timestamp must not make thousands of partitions.
_BACKFILL_DAYS = 60


def _checkin_table(*pk: str, **kw) -> None:
    op.create_table('checkin',
    sa.Column('id', sa.BigInteger(), server_default=sa.text("nextval('checkin_id_seq')"), nullable=False),
    sa.Column('venue_id', sa.Integer(), nullable=False),
    sa.Column('logbook_id', sa.Integer(), nullable=False),
    sa.Column('citizen_id', sa.Integer(), nullable=False),
    sa.Column('helper_id', sa.Integer(), nullable=True),
    sa.Column('via', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('popup_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('alert', sa.Boolean(), nullable=False),
    sa.Column('minor', sa.Boolean(), nullable=False),
    sa.Column('name_masked', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('id_masked', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False),
    sa.Column('at', models.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizen.id'], name='checkin_citizen_id_fkey'),
    sa.ForeignKeyConstraint(['helper_id'], ['citizen.id'], name='checkin_helper_id_fkey'),
    sa.ForeignKeyConstraint(['logbook_id'], ['logbook.id'], name='checkin_logbook_id_fkey'),
    sa.ForeignKeyConstraint(['venue_id'], ['venue.id'], name='checkin_venue_id_fkey'),
    sa.PrimaryKeyConstraint(*pk, name='checkin_pkey'),
    **kw,
    )
    # The id sequence belongs to the new table (so it survives dropping the old one, and
    # TRUNCATE ... RESTART IDENTITY still resets it).
    op.execute("ALTER SEQUENCE checkin_id_seq OWNED BY checkin.id")


def _set_aside(new_name: str) -> None:
    """Rename the current table and its primary key; drop its other indexes (their names
    go to the new table's, and the copy is faster without them)."""
    op.execute(f"ALTER TABLE checkin RENAME TO {new_name}")
    op.execute(f"ALTER INDEX checkin_pkey RENAME TO {new_name}_pkey")
    for name in _INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")


def _indexes() -> None:
    for name, columns in _INDEXES.items():
        op.create_index(name, 'checkin', columns, unique=False)


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != 'postgresql':
        return
    _set_aside('checkin_unpartitioned')
    # A partitioned table's unique keys must contain the partition key: (id, at). Ids stay
    # unique by construction (one sequence).
    _checkin_table('id', 'at', postgresql_partition_by='RANGE (at)')
    op.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF checkin DEFAULT")
    today = beijing_day(utcnow())
    oldest = conn.execute(sa.text("SELECT min(at) FROM checkin_unpartitioned")).scalar()
    since = (max(beijing_day(oldest), today - timedelta(days=_BACKFILL_DAYS))
             if oldest is not None else today)
    ensure_partitions(conn, today=today, since=since, lock_timeout=None)
    op.execute(f"INSERT INTO checkin ({_COLUMNS}) SELECT {_COLUMNS} FROM checkin_unpartitioned")
    op.execute("DROP TABLE checkin_unpartitioned")
    _indexes()  # on the parent: PostgreSQL makes each one on every partition, present and future
    op.execute("ANALYZE checkin")


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != 'postgresql':
        return
    _set_aside('checkin_partitioned')
    _checkin_table('id')
    op.execute(f"INSERT INTO checkin ({_COLUMNS}) SELECT {_COLUMNS} FROM checkin_partitioned")
    op.execute("DROP TABLE checkin_partitioned")  # its partitions go with it
    _indexes()
