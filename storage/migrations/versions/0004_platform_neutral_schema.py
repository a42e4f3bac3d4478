"""platform-neutral schema: every row names its platform; X's rows become rows of platform "x"

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:40:00.000000

- ``mentions`` becomes ``posts``, keyed by (platform, post_ref); ``author_id`` is ``author_ref``.
- ``users`` get a surrogate integer id; the X user id is ``user_ref``, unique with ``platform``.
- ``jobs``: ``tweet_id`` becomes the nullable origin (``platform``, ``post_ref``), a foreign key to
  ``posts``; ``author_id`` becomes ``user_id`` (a foreign key to ``users``: a job whose author had
  no user row gets one, with the name the job was asked under); ``reply_tweet_id`` is ``reply_ref``.
- ``replies``: ``in_reply_to_tweet_id`` becomes (``platform``, ``in_reply_to_ref``);
  ``reply_tweet_id`` is ``reply_ref``.
- ``cursors``, ``api_calls`` and ``rate_windows`` carry ``platform``.

Each table is rebuilt: the old one is set aside under another name (its indexes and, on
PostgreSQL, its sequence renamed too, so that the new table can take the names), the new one is
created and filled with ``INSERT ... SELECT``, and the old one is dropped. Ids are kept (jobs,
events, replies, API calls), and PostgreSQL's sequences are moved past them.

The downgrade keeps the rows of platform "x" only: a job with no origin post, and rows of any
other platform, have no place in the old tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

X = "x"
STATES = ('queued', 'rendering', 'uploading', 'replied', 'failed', 'cancelled')


def _time(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, storage.models.UTCDateTime(timezone=True), nullable=nullable)


def _state(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.Enum(*STATES, name='jobstate', native_enum=False, length=16), nullable=nullable)


def _outcome() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column('outcome', sa.Enum('queued', 'refused', 'ignored', name='outcome', native_enum=False, length=16),
                     nullable=False)


def _set_aside(table: str, suffix: str, indexes: tuple[str, ...] = (), serial: bool = False) -> str:
    """Rename ``table`` out of the way, freeing every name the new table will take; its new name."""
    for index in indexes:
        op.drop_index(index, table_name=table)
    aside = f"{table}{suffix}"
    op.rename_table(table, aside)
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # Primary keys' and unique constraints' indexes, and sequences, are named in the schema.
        names = bind.execute(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = :t"), {"t": aside})
        for (index,) in list(names):
            op.execute(f'ALTER INDEX "{index}" RENAME TO "{index}{suffix}"')
        if serial:
            sequence = bind.scalar(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": aside})
            if sequence is not None:
                op.execute(f'ALTER SEQUENCE {sequence} RENAME TO "{table}_id_seq{suffix}"')
    return aside


def _copy(sql: str, **params: object) -> None:
    op.get_bind().execute(sa.text(sql), params)


def _move_sequences(*tables: str) -> None:
    """Ids were copied as they were: PostgreSQL's sequences must start after them."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        op.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        )


# -- upgrade -------------------------------------------------------------------------------------


def upgrade() -> None:
    old = "_0003"
    _set_aside("job_events", old, ("ix_job_events_job_id",), serial=True)
    _set_aside("jobs", old, ("ix_jobs_author_created", "ix_jobs_claim"), serial=True)
    _set_aside("replies", old, ("ix_replies_in_reply_to_tweet_id",), serial=True)
    _set_aside("users", old)
    _set_aside("mentions", old)
    _set_aside("cursors", old)
    _set_aside("api_calls", old, ("ix_api_calls_at",), serial=True)
    _set_aside("rate_windows", old)
    _create_new()

    _copy("INSERT INTO posts (platform, post_ref, author_ref, author_username, text, outcome, reason, seen_at) "
          "SELECT :x, tweet_id, author_id, author_username, text, outcome, reason, seen_at FROM mentions_0003", x=X)
    _copy("INSERT INTO users (platform, user_ref, username, banned, ban_reason, priority, created_at) "
          "SELECT :x, id, username, banned, ban_reason, priority, created_at FROM users_0003 ORDER BY created_at, id",
          x=X)
    # Jobs name their author by a user's row now: an author who had none gets one, unbanned.
    _copy("INSERT INTO users (platform, user_ref, username, banned, ban_reason, priority, created_at) "
          "SELECT :x, author_id, MAX(author_username), :no, NULL, 0, MIN(created_at) FROM jobs_0003 "
          "WHERE author_id NOT IN (SELECT id FROM users_0003) GROUP BY author_id ORDER BY author_id", x=X, no=False)
    _copy("INSERT INTO jobs (id, platform, post_ref, user_id, author_username, state, priority, options, not_before, "
          "content_image, style_image, result_image, reply_ref, error, attempts, lease_owner, lease_expires_at, "
          "progress_iteration, progress_total, render_s, created_at, updated_at, started_at, finished_at) "
          "SELECT j.id, :x, j.tweet_id, u.id, j.author_username, j.state, j.priority, j.options, j.not_before, "
          "j.content_image, j.style_image, j.result_image, j.reply_tweet_id, j.error, j.attempts, j.lease_owner, "
          "j.lease_expires_at, j.progress_iteration, j.progress_total, j.render_s, j.created_at, j.updated_at, "
          "j.started_at, j.finished_at "
          "FROM jobs_0003 j JOIN users u ON u.platform = :x AND u.user_ref = j.author_id", x=X)
    _copy("INSERT INTO job_events (id, job_id, from_state, to_state, reason, worker, at) "
          "SELECT id, job_id, from_state, to_state, reason, worker, at FROM job_events_0003")
    _copy("INSERT INTO replies (id, platform, in_reply_to_ref, kind, optional, text, reply_ref, attempts, error, "
          "claimed_by, claimed_until, not_before, created_at, sent_at) "
          "SELECT id, :x, in_reply_to_tweet_id, kind, optional, text, reply_tweet_id, attempts, error, "
          "claimed_by, claimed_until, not_before, created_at, sent_at FROM replies_0003", x=X)
    _copy("INSERT INTO cursors (platform, name, value, updated_at) "
          "SELECT :x, name, value, updated_at FROM cursors_0003", x=X)
    _copy("INSERT INTO api_calls (id, platform, endpoint, status, cost_usd, at) "
          "SELECT id, :x, endpoint, status, cost_usd, at FROM api_calls_0003", x=X)
    _copy('INSERT INTO rate_windows (platform, endpoint, "limit", remaining, reset_at, capped_until, updated_at) '
          'SELECT :x, endpoint, "limit", remaining, reset_at, capped_until, updated_at FROM rate_windows_0003', x=X)
    _move_sequences("jobs", "job_events", "replies", "api_calls")
    for table in ("job_events", "jobs", "replies", "users", "mentions", "cursors", "api_calls", "rate_windows"):
        op.drop_table(f"{table}{old}")


def _create_new() -> None:
    op.create_table('posts',
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('post_ref', sa.String(length=64), nullable=False),
    sa.Column('author_ref', sa.String(length=64), nullable=False),
    sa.Column('author_username', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    _outcome(),
    sa.Column('reason', sa.Text(), nullable=True),
    _time('seen_at'),
    sa.PrimaryKeyConstraint('platform', 'post_ref'),
    )
    op.create_index('ix_posts_author', 'posts', ['platform', 'author_ref'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('user_ref', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('banned', sa.Boolean(), nullable=False),
    sa.Column('ban_reason', sa.Text(), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    _time('created_at'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'user_ref', name='uq_users_platform_user_ref'),
    )

    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=True),
    sa.Column('post_ref', sa.String(length=64), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('author_username', sa.String(length=64), nullable=True),
    _state('state'),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=True),
    _time('not_before', nullable=True),
    sa.Column('content_image', sa.LargeBinary(), nullable=False),
    sa.Column('style_image', sa.LargeBinary(), nullable=False),
    sa.Column('result_image', sa.LargeBinary(), nullable=True),
    sa.Column('reply_ref', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    _time('lease_expires_at', nullable=True),
    sa.Column('progress_iteration', sa.Integer(), nullable=False),
    sa.Column('progress_total', sa.Integer(), nullable=False),
    sa.Column('render_s', sa.Float(), nullable=True),
    _time('created_at'),
    _time('updated_at'),
    _time('started_at', nullable=True),
    _time('finished_at', nullable=True),
    sa.ForeignKeyConstraint(['platform', 'post_ref'], ['posts.platform', 'posts.post_ref'], name='fk_jobs_post'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_jobs_user_id'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'post_ref', name='uq_jobs_post'),
    )
    op.create_index('ix_jobs_claim', 'jobs', ['state', 'priority', 'id'], unique=False)
    op.create_index('ix_jobs_user_created', 'jobs', ['user_id', 'created_at'], unique=False)

    op.create_table('job_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    _state('from_state', nullable=True),
    _state('to_state'),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('worker', sa.String(length=128), nullable=True),
    _time('at'),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_job_events_job_id', 'job_events', ['job_id'], unique=False)

    op.create_table('replies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('in_reply_to_ref', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('optional', sa.Boolean(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('reply_ref', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('claimed_by', sa.String(length=128), nullable=True),
    _time('claimed_until', nullable=True),
    _time('not_before', nullable=True),
    _time('created_at'),
    _time('sent_at', nullable=True),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_replies_in_reply_to', 'replies', ['platform', 'in_reply_to_ref'], unique=False)

    op.create_table('cursors',
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=64), nullable=False),
    _time('updated_at'),
    sa.PrimaryKeyConstraint('platform', 'name'),
    )

    op.create_table('api_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('endpoint', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('cost_usd', sa.Float(), nullable=False),
    _time('at'),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_api_calls_at', 'api_calls', ['at'], unique=False)

    op.create_table('rate_windows',
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('endpoint', sa.String(length=64), nullable=False),
    sa.Column('limit', sa.Integer(), nullable=False),
    sa.Column('remaining', sa.Integer(), nullable=False),
    _time('reset_at'),
    _time('capped_until', nullable=True),
    _time('updated_at'),
    sa.PrimaryKeyConstraint('platform', 'endpoint'),
    )


# -- downgrade -----------------------------------------------------------------------------------


def downgrade() -> None:
    new = "_0004"
    _set_aside("job_events", new, ("ix_job_events_job_id",), serial=True)
    _set_aside("jobs", new, ("ix_jobs_claim", "ix_jobs_user_created"), serial=True)
    _set_aside("replies", new, ("ix_replies_in_reply_to",), serial=True)
    _set_aside("users", new, serial=True)
    _set_aside("posts", new, ("ix_posts_author",))
    _set_aside("cursors", new)
    _set_aside("api_calls", new, ("ix_api_calls_at",), serial=True)
    _set_aside("rate_windows", new)
    _create_old()

    _copy("INSERT INTO mentions (tweet_id, author_id, author_username, text, outcome, reason, seen_at) "
          "SELECT post_ref, author_ref, author_username, text, outcome, reason, seen_at FROM posts_0004 "
          "WHERE platform = :x", x=X)
    _copy("INSERT INTO users (id, username, banned, ban_reason, priority, created_at) "
          "SELECT user_ref, username, banned, ban_reason, priority, created_at FROM users_0004 WHERE platform = :x",
          x=X)
    _copy("INSERT INTO jobs (id, tweet_id, author_id, author_username, state, priority, options, not_before, "
          "content_image, style_image, result_image, reply_tweet_id, error, attempts, lease_owner, lease_expires_at, "
          "progress_iteration, progress_total, render_s, created_at, updated_at, started_at, finished_at) "
          "SELECT j.id, j.post_ref, u.user_ref, COALESCE(j.author_username, u.username), j.state, j.priority, "
          "j.options, j.not_before, j.content_image, j.style_image, j.result_image, j.reply_ref, j.error, "
          "j.attempts, j.lease_owner, j.lease_expires_at, j.progress_iteration, j.progress_total, j.render_s, "
          "j.created_at, j.updated_at, j.started_at, j.finished_at "
          "FROM jobs_0004 j JOIN users_0004 u ON u.id = j.user_id WHERE j.platform = :x AND u.platform = :x", x=X)
    _copy("INSERT INTO job_events (id, job_id, from_state, to_state, reason, worker, at) "
          "SELECT id, job_id, from_state, to_state, reason, worker, at FROM job_events_0004 "
          "WHERE job_id IN (SELECT id FROM jobs)")
    _copy("INSERT INTO replies (id, in_reply_to_tweet_id, kind, optional, text, reply_tweet_id, attempts, error, "
          "claimed_by, claimed_until, not_before, created_at, sent_at) "
          "SELECT id, in_reply_to_ref, kind, optional, text, reply_ref, attempts, error, "
          "claimed_by, claimed_until, not_before, created_at, sent_at FROM replies_0004 WHERE platform = :x", x=X)
    _copy("INSERT INTO cursors (name, value, updated_at) "
          "SELECT name, value, updated_at FROM cursors_0004 WHERE platform = :x", x=X)
    _copy("INSERT INTO api_calls (id, endpoint, status, cost_usd, at) "
          "SELECT id, endpoint, status, cost_usd, at FROM api_calls_0004 WHERE platform = :x", x=X)
    _copy('INSERT INTO rate_windows (endpoint, "limit", remaining, reset_at, capped_until, updated_at) '
          'SELECT endpoint, "limit", remaining, reset_at, capped_until, updated_at FROM rate_windows_0004 '
          'WHERE platform = :x', x=X)
    _move_sequences("jobs", "job_events", "replies", "api_calls")
    for table in ("job_events", "jobs", "replies", "users", "posts", "cursors", "api_calls", "rate_windows"):
        op.drop_table(f"{table}{new}")


def _create_old() -> None:
    """The tables as migrations 0001 to 0003 left them."""
    op.create_table('api_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('endpoint', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('cost_usd', sa.Float(), nullable=False),
    _time('at'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_api_calls_at', 'api_calls', ['at'], unique=False)
    op.create_table('cursors',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=64), nullable=False),
    _time('updated_at'),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('mentions',
    sa.Column('tweet_id', sa.String(length=32), nullable=False),
    sa.Column('author_id', sa.String(length=32), nullable=False),
    sa.Column('author_username', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    _outcome(),
    sa.Column('reason', sa.Text(), nullable=True),
    _time('seen_at'),
    sa.PrimaryKeyConstraint('tweet_id')
    )
    op.create_table('rate_windows',
    sa.Column('endpoint', sa.String(length=64), nullable=False),
    sa.Column('limit', sa.Integer(), nullable=False),
    sa.Column('remaining', sa.Integer(), nullable=False),
    _time('reset_at'),
    _time('capped_until', nullable=True),
    _time('updated_at'),
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
    _time('created_at'),
    _time('sent_at', nullable=True),
    sa.Column('claimed_by', sa.String(length=128), nullable=True),
    _time('claimed_until', nullable=True),
    _time('not_before', nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_replies_in_reply_to_tweet_id', 'replies', ['in_reply_to_tweet_id'], unique=False)
    op.create_table('users',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('banned', sa.Boolean(), nullable=False),
    sa.Column('ban_reason', sa.Text(), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    _time('created_at'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tweet_id', sa.String(length=32), nullable=False),
    sa.Column('author_id', sa.String(length=32), nullable=False),
    sa.Column('author_username', sa.String(length=64), nullable=False),
    _state('state'),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('content_image', sa.LargeBinary(), nullable=False),
    sa.Column('style_image', sa.LargeBinary(), nullable=False),
    sa.Column('result_image', sa.LargeBinary(), nullable=True),
    sa.Column('reply_tweet_id', sa.String(length=32), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    _time('lease_expires_at', nullable=True),
    sa.Column('progress_iteration', sa.Integer(), nullable=False),
    sa.Column('progress_total', sa.Integer(), nullable=False),
    sa.Column('render_s', sa.Float(), nullable=True),
    _time('created_at'),
    _time('updated_at'),
    _time('started_at', nullable=True),
    _time('finished_at', nullable=True),
    sa.Column('options', sa.JSON(), nullable=True),
    _time('not_before', nullable=True),
    sa.ForeignKeyConstraint(['tweet_id'], ['mentions.tweet_id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tweet_id')
    )
    op.create_index('ix_jobs_author_created', 'jobs', ['author_id', 'created_at'], unique=False)
    op.create_index('ix_jobs_claim', 'jobs', ['state', 'priority', 'id'], unique=False)
    op.create_table('job_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    _state('from_state', nullable=True),
    _state('to_state'),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('worker', sa.String(length=128), nullable=True),
    _time('at'),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_job_events_job_id', 'job_events', ['job_id'], unique=False)
