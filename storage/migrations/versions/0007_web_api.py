"""the web API: API keys, and the token a web request's URLs carry

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 01:30:00.000000

- ``api_keys``: a name, the SHA-256 of the key (the key is shown once), its quota per day and
  priority, when it was made and revoked.
- ``jobs.token_hash``: the SHA-256 of a web request's unguessable token, unique; NULL for a job
  asked for by a post (every job until now).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'api_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('per_day', sa.Integer(), nullable=False),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key_hash', name='uq_api_keys_key_hash'),
    )
    # Plain ALTERs, no table rebuild: SQLite could not drop ``jobs`` under its events' foreign keys.
    op.add_column('jobs', sa.Column('token_hash', sa.String(length=64), nullable=True))
    op.create_index('ix_jobs_token_hash', 'jobs', ['token_hash'], unique=True)


def downgrade() -> None:
    # Web requests lose their token (their URLs stop working); the jobs themselves are kept.
    op.drop_index('ix_jobs_token_hash', table_name='jobs')
    op.execute("ALTER TABLE jobs DROP COLUMN token_hash")  # SQLite 3.35+ and PostgreSQL, without a rebuild
    op.drop_table('api_keys')
