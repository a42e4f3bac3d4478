"""reply claims and backoff

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 22:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', storage.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('not_before', storage.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.drop_column('not_before')
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('claimed_by')
