"""The database schema's version: upgraded by Alembic migrations, checked when the bot starts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from storage.errors import StorageError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaOutOfDate(StorageError):
    """The database is not at the schema this code needs."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest migration this code knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` (``forger db upgrade``)."""
    with _migrating(engine) as connection:
        command.upgrade(_config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Undo migrations down to ``revision`` (what each keeps is said in its downgrade)."""
    with _migrating(engine) as connection:
        command.downgrade(_config(connection), revision)


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction for migrations to run in.

    SQLite alters a table by copying it, dropping it and renaming the copy; dropping a table
    that others refer to (jobs, under job_events and replies) fails while foreign keys are
    enforced. So on SQLite they are off for the migration (a pragma that only works outside a
    transaction) and checked all at once before it commits, as Alembic's batch mode advises.
    """
    with engine.connect() as connection:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                yield connection
                if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all()):
                    raise StorageError(f"the migration left rows referring to nothing: {broken[:5]}")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def check(engine: Engine) -> None:
    """Raise SchemaOutOfDate, saying what to run, unless the database is at ``head()``."""
    found, wanted = current(engine), head()
    if found != wanted:
        where = "empty" if found is None else f"at migration {found}"
        raise SchemaOutOfDate(
            f"the database {engine.url.render_as_string(hide_password=True)} is {where}; "
            f"this Forger needs migration {wanted}: run `forger db upgrade`"
        )
