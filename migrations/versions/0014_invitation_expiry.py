"""registrarinvitation.expires_at: invitations to be a co-registrar expire

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 14:20:00

Invitations made before this had no end. Each gets its creation time plus the default
validity (models.registrars.DEFAULT_INVITATION_DAYS, 7 days): one older than that reads as
expired at once, which is the point — a forgotten invitation must not make someone a
registrar months later. The owner can invite again.
"""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

import models.tables
from models.registrars import DEFAULT_INVITATION_DAYS

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_invitation = sa.table('registrarinvitation', sa.column('id', sa.Integer()),
                       sa.column('created_at', models.tables.UTCDateTime()),
                       sa.column('expires_at', models.tables.UTCDateTime()))


def upgrade() -> None:
    op.add_column('registrarinvitation',
                  sa.Column('expires_at', models.tables.UTCDateTime(timezone=True),
                            nullable=True))
    bind = op.get_bind()
    validity = timedelta(days=DEFAULT_INVITATION_DAYS)
    rows = bind.execute(sa.select(_invitation.c.id, _invitation.c.created_at)).all()
    for invitation_id, created_at in rows:  # a venue's owner invites a handful: row by row
        bind.execute(_invitation.update().where(_invitation.c.id == invitation_id)
                     .values(expires_at=created_at + validity))
    with op.batch_alter_table('registrarinvitation') as batch_op:
        batch_op.alter_column('expires_at', existing_type=models.tables.UTCDateTime(),
                              nullable=False)


def downgrade() -> None:
    # Rows stored as 'expired' stay so: the code before this takes any state but 'pending'
    # as answered (409), so no expired invitation comes back to life.
    with op.batch_alter_table('registrarinvitation') as batch_op:
        batch_op.drop_column('expires_at')
