"""Shared fixtures: the network is off, databases are real, X is the sandbox over real HTTP."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from storage.db import create_schema, open_engine, session_factory

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


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


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite database file with the schema."""
    engine = open_engine(f"sqlite:///{tmp_path / 'forger.sqlite3'}")
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture(scope="session")
def images() -> Path:
    if not IMAGES.is_dir():
        pytest.fail(f"sample images not found at {IMAGES} (the team's shared/images folder)")
    return IMAGES
