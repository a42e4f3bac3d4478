"""People who write to the bot: who is banned, who goes first."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import Post, User


def seen(session: Session, platform: str, user_ref: str, username: str) -> User:
    """The user ``user_ref`` of ``platform``, created on first sight; a changed username is kept up to date."""
    query = select(User).where(User.platform == platform, User.user_ref == user_ref)
    user = session.scalar(query)
    if user is None:
        try:
            with session.begin_nested():  # a savepoint: a row made meanwhile must not abort the transaction
                user = User(platform=platform, user_ref=user_ref, username=username)
                session.add(user)
                session.flush()
        except IntegrityError:  # another transaction made it first (two web requests at once, on PostgreSQL)
            user = session.scalars(query).one()
    if user.username != username:
        user.username = username
    return user


def find(session: Session, platform: str, user_ref: str) -> User | None:
    """The user ``user_ref`` of ``platform``, if the bot has seen them."""
    return session.scalar(select(User).where(User.platform == platform, User.user_ref == user_ref))


def banned(session: Session, platform: str, user_refs: list[str]) -> dict[str, str]:
    """Which of ``user_refs`` of ``platform`` are banned, with why."""
    if not user_refs:
        return {}
    query = select(User.user_ref, User.ban_reason).where(
        User.platform == platform, User.user_ref.in_(user_refs), User.banned)
    return {ref: reason or "banned" for ref, reason in session.execute(query)}


def get(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def by_name(session: Session, username: str) -> User | None:
    """The user called @``username`` (without the @, any case), or None.

    A name is unique at any one time, but a name given up can be taken by someone else (and two
    platforms may each have one): of several users last seen with it, the one who most recently
    wrote to the bot under it has it.
    """
    name = username.removeprefix("@").lower()
    holders = list(session.scalars(select(User).where(func.lower(User.username) == name).order_by(User.created_at)))
    if len(holders) < 2:
        return holders[0] if holders else None
    by_ref = {(user.platform, user.user_ref): user for user in holders}
    latest = session.execute(
        select(Post.platform, Post.author_ref)
        .where(func.lower(Post.author_username) == name)
        .order_by(Post.seen_at.desc())
    )
    for platform, author_ref in latest:
        if (platform, author_ref) in by_ref:
            return by_ref[(platform, author_ref)]
    return holders[-1]


def ban(session: Session, user: User, reason: str) -> None:
    user.banned = True
    user.ban_reason = reason


def unban(session: Session, user: User) -> None:
    user.banned = False
    user.ban_reason = None


def set_priority(session: Session, user: User, priority: int) -> None:
    """Jobs of users with a higher number are claimed first; 0 is the default."""
    user.priority = priority

