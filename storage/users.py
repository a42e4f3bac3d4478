"""People who write to the bot: who is banned, who goes first."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import User


def seen(session: Session, user_id: str, username: str) -> User:
    """The user, created on first sight; a changed username is kept up to date."""
    user = session.get(User, user_id)
    if user is None:
        user = User(id=user_id, username=username)
        session.add(user)
        session.flush()
    elif user.username != username:
        user.username = username
    return user


def by_name(session: Session, username: str) -> User | None:
    """Look a user up by X username (without the @, any case)."""
    name = username.removeprefix("@").lower()
    return session.scalar(select(User).where(User.username.ilike(name)))


def ban(session: Session, user: User, reason: str) -> None:
    user.banned = True
    user.ban_reason = reason


def unban(session: Session, user: User) -> None:
    user.banned = False
    user.ban_reason = None


def set_priority(session: Session, user: User, priority: int) -> None:
    """Jobs of users with a higher number are claimed first; 0 is the default."""
    user.priority = priority


def everyone(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))
