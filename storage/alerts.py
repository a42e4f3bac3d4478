"""Alerts for the admin: what went wrong that nobody would otherwise see (mentions lost beyond a
platform's reach). Kept as rows, so the admin pages and ``forger stats`` show them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Alert, utcnow

MENTION_GAP = "mention_gap"  # more mentions arrived between two reads than the platform serves


def raise_alert(session: Session, *, kind: str, message: str, platform: str | None = None,
                now: datetime | None = None) -> Alert:
    """Keep an alert for the admin."""
    alert = Alert(platform=platform, kind=kind, message=message, at=now or utcnow())
    session.add(alert)
    return alert


def since(session: Session, moment: datetime, *, kind: str | None = None) -> list[Alert]:
    """Alerts raised since ``moment``, newest first."""
    query = select(Alert).where(Alert.at >= moment).order_by(Alert.id.desc())
    if kind is not None:
        query = query.where(Alert.kind == kind)
    return list(session.scalars(query))


def count_since(session: Session, moment: datetime) -> int:
    return session.scalar(select(func.count()).select_from(Alert).where(Alert.at >= moment)) or 0
