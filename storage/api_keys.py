"""Keys to the web API: made, listed and revoked by the operator (``forger api-key``), looked up by
their hash on each request. A key is shown once, when it is made; only its SHA-256 is kept."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import ApiKey, utcnow

PREFIX = "fk_"  # a Forger key, recognisable in a config file or a leaked log


def digest(secret: str) -> str:
    """The SHA-256 (hex) of a key or token: what is stored and looked up."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create(session: Session, name: str, *, per_day: int, priority: int = 0) -> tuple[ApiKey, str]:
    """A new key called ``name``; returns its row and the key itself (shown once, never stored)."""
    secret = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, key_hash=digest(secret), per_day=per_day, priority=priority)
    session.add(key)
    session.flush()
    return key, secret


def by_secret(session: Session, secret: str) -> ApiKey | None:
    """The key ``secret`` is, revoked or not; None for one never made."""
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == digest(secret)))


def get(session: Session, key_id: int) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def everyone(session: Session) -> list[ApiKey]:
    """Every key, the oldest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke(session: Session, key: ApiKey, *, now: datetime | None = None) -> None:
    """The key works no more (its jobs already queued are painted)."""
    if key.revoked_at is None:
        key.revoked_at = now or utcnow()
