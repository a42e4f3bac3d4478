"""Text replies the bot owes: written with the decision, sent later, recorded once sent."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Reply, utcnow


def owe(session: Session, *, in_reply_to_tweet_id: str, kind: str, text: str, optional: bool = False) -> Reply:
    """Queue a reply to be sent by the next delivery; ``optional`` ones go first when money is short."""
    reply = Reply(in_reply_to_tweet_id=in_reply_to_tweet_id, kind=kind, text=text, optional=optional)
    session.add(reply)
    session.flush()
    return reply


def unsent(session: Session, *, max_attempts: int, limit: int = 50) -> list[Reply]:
    """Replies not yet accepted by X and not given up on: owed ones first, then optional, oldest first.

    Optional replies come last so that, when the budget stops them, they hold nothing else up.
    """
    query = (
        select(Reply)
        .where(Reply.reply_tweet_id.is_(None), Reply.attempts < max_attempts)
        .order_by(Reply.optional, Reply.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def mark_sent(session: Session, reply_id: int, reply_tweet_id: str) -> None:
    reply = session.get_one(Reply, reply_id)
    reply.reply_tweet_id = reply_tweet_id
    reply.sent_at = utcnow()
    reply.attempts += 1
    reply.error = None


def mark_attempt_failed(session: Session, reply_id: int, error: str) -> None:
    reply = session.get_one(Reply, reply_id)
    reply.attempts += 1
    reply.error = error


def for_tweet(session: Session, tweet_id: str) -> list[Reply]:
    """Every reply owed or sent to one tweet, oldest first."""
    query = select(Reply).where(Reply.in_reply_to_tweet_id == tweet_id).order_by(Reply.id)
    return list(session.scalars(query))


def give_up(session: Session, reply_id: int, error: str, *, max_attempts: int) -> None:
    """Never try this reply again (its tweet is gone): it counts as out of attempts."""
    reply = session.get_one(Reply, reply_id)
    reply.attempts = max(reply.attempts + 1, max_attempts)
    reply.error = error
