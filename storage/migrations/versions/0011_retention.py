"""retention: gallery paintings referenced, images deletable, old ledger and event rows rolled up

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 01:30:00.000000

A job names a gallery painting (``style_painting``) instead of storing a copy of it; its images
may be deleted after ``retention.images_days`` (``images_deleted_at``), so they become nullable.
Ledger and job-event rows past ``retention.rollup_days`` are summed into ``api_call_days`` and
``job_event_days``. Copies of gallery paintings already stored are turned into references by
``forger db prune`` (it knows the gallery; the schema does not).
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

UNDONE = "migration 0011 undone: its gallery painting was referenced, not stored"


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('style_painting', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('images_deleted_at', storage.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.alter_column('content_image', existing_type=sa.LargeBinary(), nullable=True)
        batch_op.alter_column('style_image', existing_type=sa.LargeBinary(), nullable=True)
    op.create_table(
        'api_call_days',
        sa.Column('platform', sa.String(length=32), nullable=False),
        sa.Column('endpoint', sa.String(length=64), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.Column('cost_usd', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('platform', 'endpoint', 'day'),
    )
    op.create_table(
        'job_event_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('to_state', sa.Enum('queued', 'rendering', 'uploading', 'replied', 'failed', 'cancelled',
                                      name='jobstate', native_enum=False, length=16), nullable=False),
        sa.Column('events', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day', 'to_state'),
    )


def downgrade() -> None:
    # The sums cannot become rows again: they go. Jobs whose images were deleted keep empty ones;
    # a job still to be painted from a referenced painting has nothing to paint with: it fails.
    bind = op.get_bind()
    now = datetime.now(timezone.utc)
    events = sa.table(
        'job_events', sa.column('job_id', sa.Integer()), sa.column('from_state', sa.String()),
        sa.column('to_state', sa.String()), sa.column('reason', sa.Text()), sa.column('worker', sa.String()),
        sa.column('at', storage.models.UTCDateTime(timezone=True)),
    )
    waiting = bind.execute(sa.text(
        "SELECT id, state FROM jobs WHERE style_image IS NULL AND state IN ('queued', 'rendering') ORDER BY id"
    )).all()
    for job_id, state in waiting:
        bind.execute(events.insert().values(job_id=job_id, from_state=state, to_state='failed', reason=UNDONE,
                                            worker=None, at=now))
    bind.execute(sa.text(
        "UPDATE jobs SET state = 'failed', error = :why, lease_owner = NULL, lease_expires_at = NULL "
        "WHERE style_image IS NULL AND state IN ('queued', 'rendering')"
    ), {"why": UNDONE})
    bind.execute(sa.text("UPDATE jobs SET content_image = :empty WHERE content_image IS NULL"), {"empty": b""})
    bind.execute(sa.text("UPDATE jobs SET style_image = :empty WHERE style_image IS NULL"), {"empty": b""})
    op.drop_table('job_event_days')
    op.drop_table('api_call_days')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.alter_column('style_image', existing_type=sa.LargeBinary(), nullable=False)
        batch_op.alter_column('content_image', existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column('images_deleted_at')
        batch_op.drop_column('style_painting')
