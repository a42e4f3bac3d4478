"""The database schema's version: upgraded by Alembic migrations, checked when the bot starts."""

from __future__ import annotations

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
    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Undo migrations down to ``revision`` (what each keeps is said in its downgrade)."""
    with engine.begin() as connection:
        command.downgrade(_config(connection), revision)


def check(engine: Engine) -> None:
    """Raise SchemaOutOfDate, saying what to run, unless the database is at ``head()``."""
    found, wanted = current(engine), head()
    if found != wanted:
        where = "empty" if found is None else f"at migration {found}"
        raise SchemaOutOfDate(
            f"the database {engine.url.render_as_string(hide_password=True)} is {where}; "
            f"this Forger needs migration {wanted}: run `forger db upgrade`"
        )
