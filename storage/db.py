"""Engines and sessions: one place that knows how to open Forger's database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

# Execution option asking for BEGIN IMMEDIATE on SQLite.
IMMEDIATE = "forger_sqlite_immediate"


def open_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and foreign keys.

    WAL lets the dashboard read while the worker writes; the busy timeout makes a second writer
    wait for the lock instead of failing at once.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the driver, begins transactions (below), so that a claim can ask for
        # BEGIN IMMEDIATE: the write lock taken up front, never upgraded half-way (which fails).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def begin_immediate(session: Session) -> None:
    """Make the session's transaction take the write lock at once (SQLite; a no-op elsewhere).

    Call it first thing in a transaction that reads and then writes what it read, like a claim.
    """
    session.connection(execution_options={IMMEDIATE: True})


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit, so results can be used after a transaction."""
    return sessionmaker(engine, expire_on_commit=False)
