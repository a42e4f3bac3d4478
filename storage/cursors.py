"""Named cursors: where a platform's stream (the bot's mentions) was last read up to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from storage.models import Cursor, utcnow

MENTIONS = "mentions"


def get(session: Session, platform: str, name: str) -> str | None:
    """The cursor's value, or None if it was never set."""
    cursor = session.get(Cursor, (platform, name))
    return cursor.value if cursor else None


def updated_at(session: Session, platform: str, name: str) -> datetime | None:
    """When the cursor was last put (moved or not), or None if it was never set."""
    cursor = session.get(Cursor, (platform, name))
    return cursor.updated_at if cursor else None


def put(session: Session, platform: str, name: str, value: str, *, now: datetime | None = None) -> None:
    """Set the cursor (in the caller's transaction, so it moves only with the work it covers)."""
    cursor = session.get(Cursor, (platform, name))
    if cursor is None:
        session.add(Cursor(platform=platform, name=name, value=value, updated_at=now or utcnow()))
    else:
        cursor.value = value
        cursor.updated_at = now or utcnow()
