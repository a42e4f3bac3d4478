"""results in the outbox: a reply owed may carry a job's picture

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 23:10:00.000000

Workers only paint now; the outbox posts every reply, results too. A result is a reply naming
its job (``job_id``), with the picture's ``alt_text``; ``look_first`` says an earlier attempt may
have posted it. A job that was being posted by its worker (``uploading``, under a lease) goes
back to the queue: its picture is kept, so its next attempt only owes the post.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

REQUEUED = "the worker no longer posts (migration 0005): queued again, its picture kept"


def upgrade() -> None:
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('job_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('alt_text', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('look_first', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index('ix_replies_job_id', ['job_id'], unique=False)
        batch_op.create_foreign_key('fk_replies_job_id', 'jobs', ['job_id'], ['id'])
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.alter_column('look_first', server_default=None)
    _requeue('uploading', REQUEUED)


def downgrade() -> None:
    # Results not posted yet go with the columns: their jobs are painted again from the queue.
    op.execute("DELETE FROM replies WHERE job_id IS NOT NULL AND reply_ref IS NULL")
    _requeue('uploading', "results are posted by the worker again (migration 0005 undone): queued again")
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.drop_constraint('fk_replies_job_id', type_='foreignkey')
        batch_op.drop_index('ix_replies_job_id')
        batch_op.drop_column('look_first')
        batch_op.drop_column('alt_text')
        batch_op.drop_column('job_id')


def _requeue(state: str, reason: str) -> None:
    bind = op.get_bind()
    now = datetime.now(timezone.utc)
    events = sa.table(
        'job_events', sa.column('job_id', sa.Integer()), sa.column('from_state', sa.String()),
        sa.column('to_state', sa.String()), sa.column('reason', sa.Text()), sa.column('worker', sa.String()),
        sa.column('at', storage.models.UTCDateTime(timezone=True)),
    )
    ids = [row[0] for row in bind.execute(sa.text("SELECT id FROM jobs WHERE state = :s ORDER BY id"), {"s": state})]
    for job_id in ids:
        bind.execute(events.insert().values(job_id=job_id, from_state=state, to_state='queued', reason=reason,
                                            worker=None, at=now))
    bind.execute(sa.text("UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, "
                         "not_before = NULL WHERE state = :s"), {"s": state})
