"""People who write to the bot: who is banned, who goes first."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Mention, User


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
    """The user called @``username`` (without the @, any case), or None.

    X names are unique at any one time, but a name given up can be taken by someone else: of
    several users last seen with it, the one who most recently wrote to the bot under it has it.
    """
    name = username.removeprefix("@").lower()
    holders = list(session.scalars(select(User).where(func.lower(User.username) == name).order_by(User.created_at)))
    if len(holders) < 2:
        return holders[0] if holders else None
    latest = session.scalar(
        select(Mention.author_id)
        .where(Mention.author_id.in_([user.id for user in holders]), func.lower(Mention.author_username) == name)
        .order_by(Mention.seen_at.desc())
        .limit(1)
    )
    return next((user for user in holders if user.id == latest), holders[-1])


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
