"""Engines and sessions: one place that knows how to open Forger's database."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from storage.errors import StorageError

SUPPORTED_DATABASES = ("sqlite", "postgresql")
# The execution option of sessions that only read (``session_factory``).
READ_ONLY = "forger_read_only"


def open_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout, foreign keys, immediate locks.

    ``create=False`` refuses an SQLite file that does not exist (what only reads a database
    must not leave an empty one, and its folders, behind a mistyped path).

    The busy timeout makes a second process wait for the lock instead of failing at once; WAL
    keeps commits cheap and lets a crashed process leave the file intact.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # a malformed URL, or a port that is not a number
        raise StorageError(f"cannot use the database URL {without_password(url)!r}: {exc}") from exc
    if parsed.drivername in ("postgres", "postgresql"):
        # Heroku's DATABASE_URL says postgres://, and a bare postgresql:// means psycopg2 to
        # SQLAlchemy: Forger's driver is psycopg (3).
        parsed = parsed.set(drivername="postgresql+psycopg")
        url = parsed.render_as_string(hide_password=False)
    shown = parsed.render_as_string(hide_password=True)  # errors never show the password
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_DATABASES:
        # The queue's claims and the rate ledger's upserts are written for these two.
        raise StorageError(
            f"cannot use the database URL {shown!r}: Forger keeps its data in SQLite or PostgreSQL, not {backend}"
        )
    if backend == "postgresql":
        try:
            engine = create_engine(url, pool_pre_ping=True)
        except (ArgumentError, ImportError) as exc:  # an unknown or missing driver (postgresql+xyz://)
            raise StorageError(f"cannot use the database URL {shown!r}: {exc}") from exc

        @event.listens_for(engine, "connect")
        def _utc(dbapi_connection: Any, _record: Any) -> None:
            # Days are UTC days everywhere in Forger (quotas, the budget's chart): the server's own
            # time zone must not move a timestamp to another date when SQL takes its date.
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET TIME ZONE 'UTC'")
            dbapi_connection.autocommit = autocommit

        return engine

    if parsed.database and parsed.database != ":memory:":
        if not create and not Path(parsed.database).is_file():
            raise StorageError(f"there is no database at {parsed.database}: `forger db upgrade` creates it")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the driver, begins transactions (below), as BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Connection) -> None:
        # Every transaction takes SQLite's single write lock up front. A deferred transaction that
        # reads and then writes must upgrade its lock, and in WAL mode that upgrade fails at once
        # ("database is locked", no busy wait) whenever another process committed in between.
        # So transactions queue for the lock instead; they are short (milliseconds), which is
        # what one SQLite file can offer. Many workers belong on PostgreSQL. A session made to
        # read only (``session_factory(read_only=True)``: the dashboard's pages) takes no lock:
        # in WAL mode a reader never holds a writer up.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit, so results can be used after a transaction.

    ``read_only`` sessions are for reading only: on SQLite their transactions do not take the
    write lock up front (see ``open_engine``), so a page being drawn holds no worker up.
    """
    bind = engine.execution_options(**{READ_ONLY: True}) if read_only else engine
    return sessionmaker(bind, expire_on_commit=False)


def database_size(bind: Engine | Connection) -> int:
    """The database's size in bytes: PostgreSQL's ``pg_database_size``; an SQLite file's pages
    (and its write-ahead log, where there is one), for the admin pages. Given a connection (a
    session's), it asks on that one: on SQLite another would wait for its transaction's lock."""
    with _connected(bind) as connection:
        if connection.dialect.name == "postgresql":
            return int(connection.scalar(text("SELECT pg_database_size(current_database())")) or 0)
        pages = int(connection.exec_driver_sql("PRAGMA page_count").scalar() or 0)
        page_size = int(connection.exec_driver_sql("PRAGMA page_size").scalar() or 0)
    size = pages * page_size
    database = connection.engine.url.database
    if database and database != ":memory:":
        wal = Path(f"{database}-wal")
        size += wal.stat().st_size if wal.is_file() else 0
    return size


@contextmanager
def _connected(bind: Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as connection:
            yield connection


def add_to_sums(session: Session, model: type[Any], sums: dict[tuple[Any, ...], dict[str, Any]], keys: Sequence[str]) -> None:
    """Add ``sums`` (a key's values -> the amounts) into ``model``'s rows of those keys, inserting
    the rows missing, in one statement each (``INSERT ... ON CONFLICT DO UPDATE``, both backends)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    table = model.__table__
    for key, amounts in sums.items():
        statement = insert(table).values(**dict(zip(keys, key)), **amounts)
        session.execute(statement.on_conflict_do_update(
            index_elements=list(keys), set_={name: table.c[name] + statement.excluded[name] for name in amounts},
        ))


def without_password(url: str) -> str:
    """``url`` as written, its password (``user:password@``) shown as ``***``: for messages about
    a URL that SQLAlchemy could not parse, and so cannot hide the password of itself."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
