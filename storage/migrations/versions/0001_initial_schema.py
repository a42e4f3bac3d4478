"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 03:50:06.037292
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('endpoint', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('cost_usd', sa.Float(), nullable=False),
    sa.Column('at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('api_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_calls_at'), ['at'], unique=False)

    op.create_table('cursors',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=64), nullable=False),
    sa.Column('updated_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('mentions',
    sa.Column('tweet_id', sa.String(length=32), nullable=False),
    sa.Column('author_id', sa.String(length=32), nullable=False),
    sa.Column('author_username', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('outcome', sa.Enum('queued', 'refused', 'ignored', name='outcome', native_enum=False, length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('seen_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tweet_id')
    )
    op.create_table('rate_windows',
    sa.Column('endpoint', sa.String(length=64), nullable=False),
    sa.Column('limit', sa.Integer(), nullable=False),
    sa.Column('remaining', sa.Integer(), nullable=False),
    sa.Column('reset_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('capped_until', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('endpoint')
    )
    op.create_table('replies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('in_reply_to_tweet_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('optional', sa.Boolean(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('reply_tweet_id', sa.String(length=32), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_replies_in_reply_to_tweet_id'), ['in_reply_to_tweet_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('banned', sa.Boolean(), nullable=False),
    sa.Column('ban_reason', sa.Text(), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tweet_id', sa.String(length=32), nullable=False),
    sa.Column('author_id', sa.String(length=32), nullable=False),
    sa.Column('author_username', sa.String(length=64), nullable=False),
    sa.Column('state', sa.Enum('queued', 'rendering', 'uploading', 'replied', 'failed', 'cancelled', name='jobstate', native_enum=False, length=16), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('content_image', sa.LargeBinary(), nullable=False),
    sa.Column('style_image', sa.LargeBinary(), nullable=False),
    sa.Column('result_image', sa.LargeBinary(), nullable=True),
    sa.Column('reply_tweet_id', sa.String(length=32), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_expires_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('progress_iteration', sa.Integer(), nullable=False),
    sa.Column('progress_total', sa.Integer(), nullable=False),
    sa.Column('render_s', sa.Float(), nullable=True),
    sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tweet_id'], ['mentions.tweet_id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tweet_id')
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_author_created', ['author_id', 'created_at'], unique=False)
        batch_op.create_index('ix_jobs_claim', ['state', 'priority', 'id'], unique=False)

    op.create_table('job_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('from_state', sa.Enum('queued', 'rendering', 'uploading', 'replied', 'failed', 'cancelled', name='jobstate', native_enum=False, length=16), nullable=True),
    sa.Column('to_state', sa.Enum('queued', 'rendering', 'uploading', 'replied', 'failed', 'cancelled', name='jobstate', native_enum=False, length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('worker', sa.String(length=128), nullable=True),
    sa.Column('at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('job_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_events_job_id'), ['job_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('job_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_events_job_id'))

    op.drop_table('job_events')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_claim')
        batch_op.drop_index('ix_jobs_author_created')

    op.drop_table('jobs')
    op.drop_table('users')
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_replies_in_reply_to_tweet_id'))

    op.drop_table('replies')
    op.drop_table('rate_windows')
    op.drop_table('mentions')
    op.drop_table('cursors')
    with op.batch_alter_table('api_calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_calls_at'))

    op.drop_table('api_calls')
