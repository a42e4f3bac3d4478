"""What the dashboard's views need from whoever built the app: kept on the app, never in its config."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from bot.dashboard.auth import PasswordHash

EXTENSION = "forger_dashboard"


@dataclass(frozen=True)
class Settings:
    sessions: sessionmaker[Session]  # for the actions, which write
    reads: sessionmaker[Session]  # for the pages, which only read
    password: PasswordHash
    budget_usd: float
    session_lifetime_s: int
    quota_per_day: int | None
    clock: Callable[[], float]


def settings() -> Settings:
    """The running app's settings (inside a request)."""
    found: Settings = current_app.extensions[EXTENSION]
    return found
