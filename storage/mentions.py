"""Mentions the poller has seen: recorded once, with what the bot made of each."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Mention, Outcome


def seen(session: Session, tweet_ids: list[str]) -> set[str]:
    """Which of ``tweet_ids`` have been recorded already."""
    if not tweet_ids:
        return set()
    rows = session.scalars(select(Mention.tweet_id).where(Mention.tweet_id.in_(tweet_ids)))
    return set(rows)


def record(
    session: Session,
    *,
    tweet_id: str,
    author_id: str,
    author_username: str,
    text: str,
    outcome: Outcome,
    reason: str | None = None,
) -> Mention:
    """Record a mention and its outcome (the caller's transaction decides when it sticks)."""
    mention = Mention(
        tweet_id=tweet_id,
        author_id=author_id,
        author_username=author_username,
        text=text,
        outcome=outcome,
        reason=reason,
    )
    session.add(mention)
    return mention
