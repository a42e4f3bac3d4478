"""Shared fixtures: the network is off, databases are real, X is the sandbox over real HTTP.

Tests that take ``engine`` or ``sessions`` run once on SQLite and once on PostgreSQL (marked
``postgres``). PostgreSQL comes from ``FORGER_TEST_POSTGRES_URL`` (``.ci/run`` starts one); without
it those runs skip, except in CI, where they must run.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from storage import schema
from storage.db import open_engine, session_factory

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "bot" / "samples"  # the sample photos shipped with the project (SOURCES.md there)
PAINTINGS = ROOT / "bot" / "paintings"  # the gallery's paintings
POSTGRES_URL = os.environ.get("FORGER_TEST_POSTGRES_URL")


def _is_loopback(host: Any) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@pytest.fixture(autouse=True)
def network_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that opens a connection beyond loopback, before a packet leaves."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise RuntimeError(f"a test tried to reach {address}: the network is off in tests")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[tuple[Engine, str]]:
    """A PostgreSQL database at the current schema, cloned for each test (fast, isolated)."""
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("FORGER_TEST_POSTGRES_URL is not set: in CI the PostgreSQL tests must run (see .ci/run)")
        pytest.skip("FORGER_TEST_POSTGRES_URL is not set (run .ci/run, or see .ci/postgres)")
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"forger_template_{os.getpid()}"
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    engine = open_engine(make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False))
    schema.upgrade(engine)
    engine.dispose()
    yield admin, name
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def postgres_url(postgres_template: tuple[Engine, str]) -> Iterator[str]:
    admin, template = postgres_template
    name = f"forger_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield make_url(POSTGRES_URL or "").set(database=name).render_as_string(hide_password=False)
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database at the current schema, on each backend in turn."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    url = f"sqlite:///{tmp_path / 'forger.sqlite3'}"
    engine = open_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = open_engine(db_url)
    yield engine
    leaked = engine.pool.checkedout()  # type: ignore[attr-defined]
    engine.dispose()
    assert leaked == 0, f"{leaked} database connection(s) left checked out"


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture(scope="session")
def samples() -> Path:
    """The folder of sample photos: coffee.jpg (a cup of coffee) and chelsea.jpg (a cat)."""
    if not (SAMPLES / "coffee.jpg").is_file():
        pytest.fail(f"the sample photos are missing from {SAMPLES}")
    return SAMPLES


@pytest.fixture(scope="session")
def paintings() -> Path:
    """The gallery's folder: starry_night.jpg, the_scream.jpg, shipwreck.jpg and their labels."""
    return PAINTINGS
