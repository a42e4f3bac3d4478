"""Admin accounts, their server-side sessions and their login attempts.

Only hashes are kept: the password's (scrypt, made by ``bot.web.admin.passwords``) and each
session token's (SHA-256). A session carries the stamp of the password hash it was made under,
so that a new password ends every older session.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Delete, delete, func, select
from sqlalchemy.orm import Session

from storage.models import AdminAccount, AdminLogin, AdminSession


def _deleted(session: Session, statement: Delete) -> int:
    """Run ``statement``; how many rows it deleted."""
    result = session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


def stamp(password_hash: str) -> str:
    """What a session keeps of the password hash it was made under (a new hash, a new stamp)."""
    return hashlib.sha256(password_hash.encode()).hexdigest()


def password_hash(session: Session, account: str) -> str | None:
    """The account's stored password hash, None if it has none."""
    return session.scalar(select(AdminAccount.password_hash).where(AdminAccount.name == account))


def set_password_hash(session: Session, account: str, hashed: str, *, now: datetime) -> int:
    """Store ``hashed`` as the account's password; every session of the account ends (their count)."""
    found = session.get(AdminAccount, account)
    if found is None:
        session.add(AdminAccount(name=account, password_hash=hashed, changed_at=now))
    else:
        found.password_hash, found.changed_at = hashed, now
    return _deleted(session, delete(AdminSession).where(AdminSession.account == account))


def start_session(
    session: Session, *, token_hash: str, account: str, password_stamp: str, csrf: str, address: str,
    now: datetime, expires_at: datetime,
) -> None:
    session.add(AdminSession(token_hash=token_hash, account=account, password_stamp=password_stamp, csrf=csrf,
                             address=address[:64], created_at=now, expires_at=expires_at))


@dataclass(frozen=True)
class SessionRow:
    account: str
    csrf: str
    expires_at: datetime
    current: bool  # made under the account's present password


def session_row(session: Session, token_hash: str) -> SessionRow | None:
    """The session of ``token_hash``, expired or not, and whether its password is still the account's
    (one query)."""
    row = session.execute(
        select(AdminSession.account, AdminSession.csrf, AdminSession.expires_at, AdminSession.password_stamp,
               AdminAccount.password_hash)
        .join(AdminAccount, AdminAccount.name == AdminSession.account)
        .where(AdminSession.token_hash == token_hash)
    ).first()
    if row is None:
        return None
    current = hmac.compare_digest(row.password_stamp, stamp(row.password_hash))
    return SessionRow(row.account, row.csrf, row.expires_at, current)


def end_session(session: Session, token_hash: str) -> None:
    session.execute(delete(AdminSession).where(AdminSession.token_hash == token_hash))


def end_expired(session: Session, *, now: datetime) -> int:
    return _deleted(session, delete(AdminSession).where(AdminSession.expires_at <= now))


def forget_logins(session: Session, *, before: datetime) -> int:
    """Delete login attempts made before ``before`` (client addresses are personal data)."""
    return _deleted(session, delete(AdminLogin).where(AdminLogin.at < before))


def record_login(session: Session, *, account: str, address: str, ok: bool, now: datetime) -> None:
    session.add(AdminLogin(account=account, address=address[:64], ok=ok, at=now))


@dataclass(frozen=True)
class Failures:
    """Failed logins in a row (since the last success, within the window) and when the last was."""

    count: int
    last_at: datetime | None


def failures_by_address(session: Session, address: str, *, since: datetime) -> Failures:
    return _failures(session, AdminLogin.address == address[:64], since)


def failures_by_account(session: Session, account: str, *, since: datetime) -> Failures:
    return _failures(session, AdminLogin.account == account, since)


def _failures(session: Session, who: ColumnElement[bool], since: datetime) -> Failures:
    last_ok = select(func.max(AdminLogin.at)).where(who, AdminLogin.ok.is_(True)).scalar_subquery()
    count, last_at = session.execute(
        select(func.count(), func.max(AdminLogin.at)).where(
            who, AdminLogin.ok.is_(False), AdminLogin.at >= since,
            AdminLogin.at > func.coalesce(last_ok, since),
        )
    ).one()
    return Failures(int(count or 0), last_at)


@dataclass(frozen=True)
class FailedFrom:
    """Failed logins from one address since some time: how many, the first and last."""

    address: str
    count: int
    first_at: datetime
    last_at: datetime


def failed_logins(session: Session, *, since: datetime, limit: int = 50) -> list[FailedFrom]:
    """Addresses that failed to log in since ``since``, the most failures first."""
    rows = session.execute(
        select(AdminLogin.address, func.count(), func.min(AdminLogin.at), func.max(AdminLogin.at))
        .where(AdminLogin.ok.is_(False), AdminLogin.at >= since)
        .group_by(AdminLogin.address)
        .order_by(func.count().desc(), func.max(AdminLogin.at).desc())
        .limit(limit)
    )
    return [FailedFrom(address, int(count), first, last) for address, count, first, last in rows]


def recent_logins(session: Session, *, limit: int = 50) -> list[AdminLogin]:
    return list(session.scalars(select(AdminLogin).order_by(AdminLogin.id.desc()).limit(limit)))
