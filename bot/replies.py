"""Text replies the bot owes people: how-tos and failure notices, delivered from the outbox."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from bot import retry
from bot.errors import Forbidden, Gone, PlatformError
from bot.platform import Platform
from storage import replies
from storage.ledger import Need
from storage.models import Reply

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryReport:
    sent: int
    failed: int


def deliver(
    sessions: sessionmaker[Session], platform: Platform, *, by: str, max_attempts: int,
    clock: Callable[[], float] = time.time,
) -> DeliveryReport:
    """Post every reply due; a failed post is counted and tried again after a backoff.

    ``by`` names this deliverer: each reply is claimed before it is posted (``storage.replies``),
    so deliverers running at once (the poller, the workers) never post the same reply together.
    A reply whose earlier post failed in a way the platform may still have carried out (a
    timeout, a 5xx, a deliverer that died) is first looked for among the bot's replies to that post.
    While the platform refuses posts (a spent window, a usage cap) nothing is sent and no attempt
    is spent: waiting is not a reply's failure. A reply to a deleted post is given up at once.
    """
    if platform.blocked_until("write") is not None:
        return DeliveryReport(sent=0, failed=0)
    with sessions() as session:
        owed = replies.unsent(session, platform=platform.name, max_attempts=max_attempts,
                              now=datetime.fromtimestamp(clock(), UTC))
    sent = failed = 0
    for reply in owed:
        with sessions.begin() as session:
            if not replies.claim(session, reply.id, by=by, now=datetime.fromtimestamp(clock(), UTC)):
                continue  # sent or being sent by another deliverer since it was listed
        try:
            posted = _earlier(platform, reply) if reply.attempts or reply.claimed_by else None
            if posted is None:
                need = Need.OPTIONAL if reply.optional else Need.OWED
                posted = platform.reply(reply.in_reply_to_ref, reply.text, need=need)
        except PlatformError as exc:
            failed += 1
            decision = retry.decide(exc, reply.attempts + 1, max_attempts=max_attempts, now=clock())
            log.warning("reply %s to post %s not sent: %s (%s)", reply.id, reply.in_reply_to_ref, exc, decision.reason)
            at = datetime.fromtimestamp(decision.at, UTC) if decision.at else None
            with sessions.begin() as session:
                if not decision.counts:
                    replies.wait(session, reply.id, until=at, reason=str(exc))
                elif isinstance(exc, (Gone, Forbidden)):  # it will never be taken: never try again
                    replies.give_up(session, reply.id, str(exc), max_attempts=max_attempts)
                else:
                    replies.mark_attempt_failed(session, reply.id, str(exc), not_before=at)
            if not exc.transient:
                continue
            break  # the platform is unwell or rate-limited: leave the rest for the next round
        with sessions.begin() as session:
            replies.mark_sent(session, reply.id, posted)
        sent += 1
        log.info("replied %s to post %s (%s)", posted, reply.in_reply_to_ref, reply.kind)
    return DeliveryReport(sent=sent, failed=failed)


def _earlier(platform: Platform, reply: Reply) -> str | None:
    """The id of the bot's reply to the same post with this text, if an earlier attempt posted it."""
    posted = platform.find_reply(reply.in_reply_to_ref, text=reply.text)
    if posted is not None:
        log.warning("reply %s was posted by an earlier attempt as post %s", reply.id, posted)
    return posted
