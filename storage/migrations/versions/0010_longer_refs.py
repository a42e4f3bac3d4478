"""longer refs: room for Bluesky's at:// URIs (about 70 characters) and handles (up to 253)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:30:00.000000

Every ``*_ref`` column (a post's or a user's id on its platform) grows from 64 to 512 characters,
and every ``username`` column from 64 to 253 (a domain name's longest). No row changes.

PostgreSQL widens a VARCHAR in place. SQLite keeps no length (a VARCHAR(64) holds any text), so
there only the declared type in the schema changes: written into ``sqlite_master`` in place, as
SQLite's documentation allows for a change that leaves the stored rows as they are, rather than by
copying the tables, which the foreign keys between them forbid inside one transaction.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

OLD, REF, NAME = 64, 512, 253
COLUMNS = {  # table -> (column, new length)
    'users': (('user_ref', REF), ('username', NAME)),
    'posts': (('post_ref', REF), ('author_ref', REF), ('author_username', NAME)),
    'jobs': (('post_ref', REF), ('reply_ref', REF), ('author_username', NAME)),
    'replies': (('in_reply_to_ref', REF), ('reply_ref', REF)),
    'billed_reads': (('resource_ref', REF), ('author_ref', REF)),
}


def upgrade() -> None:
    _retype({table: tuple((column, OLD, new) for column, new in columns) for table, columns in COLUMNS.items()})


def downgrade() -> None:
    bind = op.get_bind()
    for table, columns in COLUMNS.items():
        for column, _ in columns:
            longest = bind.scalar(sa.text(f"SELECT max(length({column})) FROM {table}"))
            if longest is not None and longest > OLD:
                raise RuntimeError(f"{table}.{column} holds values of {longest} characters, more than the "
                                   f"{OLD} migration 0009 allows: delete those rows (Bluesky's) first")
    _retype({table: tuple((column, new, OLD) for column, new in columns) for table, columns in COLUMNS.items()})


def _retype(changes: dict[str, tuple[tuple[str, int, int], ...]]) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table, columns in changes.items():
            for column, old, new in columns:
                op.alter_column(table, column, type_=sa.String(new), existing_type=sa.String(old))
        return
    if bind.dialect.name != "sqlite":
        raise NotImplementedError(f"migration 0010 runs on PostgreSQL or SQLite, not {bind.dialect.name}")
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    for table, columns in changes.items():
        sql = bind.scalar(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": table})
        for column, old, new in columns:
            sql, found = re.subn(rf'(\b{column}"? )VARCHAR\({old}\)', rf"\g<1>VARCHAR({new})", sql)
            assert found == 1, f"{table}.{column} is not a VARCHAR({old}) in: {sql}"
        bind.execute(sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = :t"),
                     {"sql": sql, "t": table})
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
    bind.exec_driver_sql(f"PRAGMA schema_version={int(version or 0) + 1}")  # connections read the schema anew
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")
