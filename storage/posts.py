"""Posts naming the bot that the poller has seen: recorded once, with what the bot made of each."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Outcome, Post


def seen(session: Session, platform: str, post_refs: list[str]) -> set[str]:
    """Which of ``post_refs`` (posts on ``platform``) have been recorded already."""
    if not post_refs:
        return set()
    rows = session.scalars(select(Post.post_ref).where(Post.platform == platform, Post.post_ref.in_(post_refs)))
    return set(rows)


def record(
    session: Session,
    *,
    platform: str,
    post_ref: str,
    author_ref: str,
    author_username: str,
    text: str,
    outcome: Outcome,
    reason: str | None = None,
) -> Post:
    """Record a post and its outcome (the caller's transaction decides when it sticks)."""
    post = Post(
        platform=platform,
        post_ref=post_ref,
        author_ref=author_ref,
        author_username=author_username,
        text=text,
        outcome=outcome,
        reason=reason,
    )
    session.add(post)
    return post


def get(session: Session, platform: str, post_ref: str) -> Post | None:
    return session.get(Post, (platform, post_ref))
