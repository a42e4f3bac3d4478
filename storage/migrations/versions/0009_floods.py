"""floods: resources billed once a day, with their author; alerts for the admin

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:40:00.000000

``billed_reads`` keeps each resource a platform billed on a UTC day (X bills a post once a day,
however often it is served), with its author, so that a flood is billed once per post and each
author's share of the month's spend can be bounded. ``alerts`` keeps what the admin must see,
such as mentions lost beyond a platform's reach.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'billed_reads',
        sa.Column('platform', sa.String(length=32), nullable=False),
        sa.Column('resource_ref', sa.String(length=64), nullable=False),
        sa.Column('day', sa.String(length=10), nullable=False),
        sa.Column('author_ref', sa.String(length=64), nullable=True),
        sa.Column('cost_usd', sa.Float(), nullable=False),
        sa.Column('at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('platform', 'resource_ref', 'day'),
    )
    with op.batch_alter_table('billed_reads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billed_reads_author_ref'), ['author_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_billed_reads_at'), ['at'], unique=False)
    op.create_table(
        'alerts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('platform', sa.String(length=32), nullable=True),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_at'), ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alerts_at'))
    op.drop_table('alerts')
    with op.batch_alter_table('billed_reads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billed_reads_at'))
        batch_op.drop_index(batch_op.f('ix_billed_reads_author_ref'))
    op.drop_table('billed_reads')
