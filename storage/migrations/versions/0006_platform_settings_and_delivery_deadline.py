"""platform settings, and a delivery deadline for replies

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:20:00.000000

- ``platform_settings``: small values a platform adapter learnt and keeps across restarts, by
  (``platform``, ``key``), e.g. which dialect of its API the platform speaks.
- ``replies.deliver_until``: a reply tried until then, however many attempts it takes (a painted
  picture waits out an outage), instead of until ``max_attempts``. No row has one yet.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'platform_settings',
        sa.Column('platform', sa.String(length=32), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('updated_at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('platform', 'key'),
    )
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deliver_until', storage.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # A reply waiting out an outage past its attempts is given up with the column.
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.drop_column('deliver_until')
    op.drop_table('platform_settings')
