"""officials as named accounts; the audit names its actor

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 11:00:00

`official` holds each official's account (role, district, hashed token and password, sealed
TOTP secret). `audit` gains `actor_id` and `actor_name`: the authenticated official of each
new row. Old rows are not rewritten (the audit is append-only, and the database refuses
UPDATE on it): they keep `actor` = "official" (or "official:<a name the client typed>") and
NULL in the new columns, which models/audit.py reads as "the shared token, name unverified" —
exactly what they meant when they were written.
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.tables

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'official',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('login', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('district', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('bootstrap', sa.Boolean(), nullable=False),
        sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=255),
                  nullable=True),
        sa.Column('totp_secret_enc', models.tables.EncryptedJSON(), nullable=True),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', models.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column('disabled_at', models.tables.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('login'),
        sa.UniqueConstraint('token_hash'),
    )
    op.add_column('audit', sa.Column('actor_id', sa.Integer(), nullable=True))
    op.add_column('audit', sa.Column(
        'actor_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.create_index('ix_audit_actor_id', 'audit', ['actor_id'])
    op.create_index('ix_audit_at', 'audit', ['at'])
    op.add_column('batch', sa.Column(
        'district', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.create_index('ix_batch_district', 'batch', ['district'])


def downgrade() -> None:
    op.drop_index('ix_batch_district', table_name='batch')
    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.drop_column('district')
    op.drop_index('ix_audit_at', table_name='audit')
    op.drop_index('ix_audit_actor_id', table_name='audit')
    # ALTER TABLE … DROP COLUMN in place (SQLite 3.35+ too): a batch copy of the table would
    # lose the append-only trigger migration 0002 put on it.
    op.execute('ALTER TABLE audit DROP COLUMN actor_name')
    op.execute('ALTER TABLE audit DROP COLUMN actor_id')
    op.drop_table('official')
