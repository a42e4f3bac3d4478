"""The outbox: posts the bot owes (results and texts), written with the decision, sent later,
recorded once sent.

Several processes may deliver (the poller after each poll, ``forger deliver``), so a reply
is claimed before it is posted: one conditional UPDATE, which only one of them can win, marks it
as being posted by one deliverer for a while (``CLAIM``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select, true, update
from sqlalchemy.orm import Session

from storage.models import Reply, utcnow

# How long a claim keeps other deliverers off a reply: far longer than one post takes (a platform's
# timeout is 30 s by default), so that only a deliverer that died leaves a reply to be taken over.
CLAIM = timedelta(minutes=5)


def owe(
    session: Session, *, platform: str, in_reply_to_ref: str, kind: str, text: str, optional: bool = False,
    job_id: int | None = None, alt_text: str | None = None, look_first: bool = False,
) -> Reply:
    """Queue a reply to post ``in_reply_to_ref`` of ``platform``, to be sent by the next delivery;
    ``optional`` ones go first when money is short. A result names its ``job_id`` (the picture
    it carries) and ``alt_text``; ``look_first`` when an earlier attempt may have posted it."""
    reply = Reply(platform=platform, in_reply_to_ref=in_reply_to_ref, kind=kind, text=text, optional=optional,
                  job_id=job_id, alt_text=alt_text, look_first=look_first)
    session.add(reply)
    session.flush()
    return reply


def unsent(
    session: Session, *, max_attempts: int, platform: str | None = None, limit: int = 50, now: datetime | None = None
) -> list[Reply]:
    """Replies due: not yet accepted by their platform, not given up on (out of attempts, or past
    their ``deliver_until``), not waiting out a backoff and not being posted by another deliverer;
    owed ones first, then optional, oldest first.

    Optional replies come last so that, when the budget stops them, they hold nothing else up.
    ``platform``: only replies to be posted there (by default, all).
    """
    now = now or utcnow()
    query = (
        select(Reply)
        .where(
            Reply.platform == platform if platform is not None else true(),
            Reply.reply_ref.is_(None),
            or_(Reply.attempts < max_attempts, Reply.deliver_until >= now),
            or_(Reply.not_before.is_(None), Reply.not_before <= now),
            _unclaimed(now),
        )
        .order_by(Reply.optional, Reply.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def claim(session: Session, reply_id: int, *, by: str, now: datetime | None = None) -> bool:
    """Take the reply for ``by`` to post; False if it was sent or another deliverer holds it.

    One conditional UPDATE: of deliverers racing for the same reply, exactly one changes the row
    (PostgreSQL re-checks the condition on the row the winner committed; SQLite writes one at a time).
    """
    now = now or utcnow()
    taken = session.scalar(
        update(Reply)
        .where(Reply.id == reply_id, Reply.reply_ref.is_(None), _unclaimed(now))
        .values(claimed_by=by, claimed_until=now + CLAIM)
        .returning(Reply.id)
    )
    return taken is not None


def mark_sent(session: Session, reply_id: int, reply_ref: str) -> None:
    reply = _settled(session, reply_id)
    reply.reply_ref = reply_ref
    reply.sent_at = utcnow()
    reply.attempts += 1
    reply.error = None


def mark_attempt_failed(
    session: Session, reply_id: int, error: str, *, not_before: datetime | None = None,
    deliver_until: datetime | None = None,
) -> None:
    """The post failed; the next attempt waits until ``not_before`` (a backoff), if given. With
    ``deliver_until`` it is tried until then, however many attempts that takes."""
    reply = _settled(session, reply_id)
    reply.attempts += 1
    reply.error = error
    reply.not_before = not_before
    reply.deliver_until = deliver_until


def wait(session: Session, reply_id: int, *, until: datetime | None, reason: str) -> None:
    """The platform asked the bot to wait (a spent window, a usage cap): not a failed attempt."""
    reply = _settled(session, reply_id)
    reply.error = reason
    reply.not_before = until


def give_up(session: Session, reply_id: int, error: str, *, max_attempts: int) -> None:
    """Never try this reply again (its post is gone): it counts as out of attempts."""
    reply = _settled(session, reply_id)
    reply.attempts = max(reply.attempts + 1, max_attempts)
    reply.error = error
    reply.deliver_until = None


def for_post(session: Session, platform: str, post_ref: str) -> list[Reply]:
    """Every reply owed or sent to one post, oldest first."""
    query = select(Reply).where(Reply.platform == platform, Reply.in_reply_to_ref == post_ref).order_by(Reply.id)
    return list(session.scalars(query))


def _unclaimed(now: datetime) -> ColumnElement[bool]:
    return or_(Reply.claimed_until.is_(None), Reply.claimed_until < now)


def _settled(session: Session, reply_id: int) -> Reply:
    """The reply, its claim given up: the post it was claimed for is over, one way or another."""
    reply = session.get_one(Reply, reply_id)
    reply.claimed_by = reply.claimed_until = None
    return reply
