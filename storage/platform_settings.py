"""What a platform adapter learnt and keeps across restarts: small values by (platform, key)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from storage.models import PlatformSetting, utcnow


def get(session: Session, platform: str, key: str) -> str | None:
    """The value kept under ``key`` for ``platform``, or None if none was kept."""
    setting = session.get(PlatformSetting, (platform, key))
    return setting.value if setting else None


def put(session: Session, platform: str, key: str, value: str, *, now: datetime | None = None) -> None:
    """Keep ``value`` under ``key`` for ``platform`` (in the caller's transaction)."""
    setting = session.get(PlatformSetting, (platform, key))
    if setting is None:
        session.add(PlatformSetting(platform=platform, key=key, value=value, updated_at=now or utcnow()))
    else:
        setting.value = value
        setting.updated_at = now or utcnow()
