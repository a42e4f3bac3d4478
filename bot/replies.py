"""Text replies the bot owes people: how-tos and failure notices, delivered from the outbox."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from bot import retry
from bot.errors import XError, XTweetGone
from bot.gateway import XGateway
from storage import replies
from storage.ledger import Need

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryReport:
    sent: int
    failed: int


def deliver(
    sessions: sessionmaker[Session], gateway: XGateway, *, max_attempts: int, clock: Callable[[], float] = time.time
) -> DeliveryReport:
    """Post every reply still owed; a failed post is counted and tried again next time.

    While X refuses posts (a spent window, a usage cap) nothing is sent and no attempt is spent:
    waiting for X is not a reply's failure. A reply to a deleted tweet is given up at once.
    """
    if gateway.blocked_until("write") is not None:
        return DeliveryReport(sent=0, failed=0)
    with sessions() as session:
        owed = replies.unsent(session, max_attempts=max_attempts)
    sent = failed = 0
    for reply in owed:
        try:
            need = Need.OPTIONAL if reply.optional else Need.OWED
            tweet_id = gateway.reply(reply.in_reply_to_tweet_id, reply.text, need=need)
        except XError as exc:
            failed += 1
            decision = retry.decide(exc, reply.attempts + 1, max_attempts=max_attempts, now=clock())
            log.warning("reply %s to tweet %s not sent: %s (%s)", reply.id, reply.in_reply_to_tweet_id, exc, decision.reason)
            if decision.counts:
                with sessions.begin() as session:
                    if isinstance(exc, XTweetGone):  # nothing left to answer: never try this one again
                        replies.give_up(session, reply.id, str(exc), max_attempts=max_attempts)
                    else:
                        replies.mark_attempt_failed(session, reply.id, str(exc))
            if not exc.transient:
                continue
            break  # X is unwell or rate-limited: leave the rest for the next round
        with sessions.begin() as session:
            replies.mark_sent(session, reply.id, tweet_id)
        sent += 1
        log.info("replied %s to tweet %s (%s)", tweet_id, reply.in_reply_to_tweet_id, reply.kind)
    return DeliveryReport(sent=sent, failed=failed)
