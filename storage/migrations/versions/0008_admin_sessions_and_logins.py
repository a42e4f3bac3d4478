"""admin sessions and logins: a password hash, server-side sessions, every login attempt

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:30:00.000000

The admin pages keep their password only as a hash (``forger admin set-password``), their
sessions on the server (so that logging out or a new password ends them) and each login attempt
(to slow guessing down and to show the admin who tried). New tables only: nothing moves.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'admin_accounts',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=False),
        sa.Column('changed_at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    op.create_table(
        'admin_sessions',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('account', sa.String(length=64), nullable=False),
        sa.Column('password_stamp', sa.String(length=64), nullable=False),
        sa.Column('csrf', sa.String(length=64), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('token_hash'),
    )
    op.create_index('ix_admin_sessions_expires_at', 'admin_sessions', ['expires_at'], unique=False)
    op.create_table(
        'admin_logins',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account', sa.String(length=64), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_admin_logins_address_at', 'admin_logins', ['address', 'at'], unique=False)
    op.create_index('ix_admin_logins_account_at', 'admin_logins', ['account', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_admin_logins_account_at', table_name='admin_logins')
    op.drop_index('ix_admin_logins_address_at', table_name='admin_logins')
    op.drop_table('admin_logins')
    op.drop_index('ix_admin_sessions_expires_at', table_name='admin_sessions')
    op.drop_table('admin_sessions')
    op.drop_table('admin_accounts')
