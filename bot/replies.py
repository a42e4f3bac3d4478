"""Text replies the bot owes people: how-tos and failure notices, delivered from the outbox."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from bot.errors import XError
from bot.gateway import XGateway
from storage import replies

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryReport:
    sent: int
    failed: int


def deliver(sessions: sessionmaker[Session], gateway: XGateway, *, max_attempts: int) -> DeliveryReport:
    """Post every reply still owed; a failed post is counted and tried again next time."""
    with sessions() as session:
        owed = replies.unsent(session, max_attempts=max_attempts)
    sent = failed = 0
    for reply in owed:
        try:
            tweet_id = gateway.reply(reply.in_reply_to_tweet_id, reply.text)
        except XError as exc:
            failed += 1
            log.warning("reply %s to tweet %s not sent: %s", reply.id, reply.in_reply_to_tweet_id, exc)
            with sessions.begin() as session:
                replies.mark_attempt_failed(session, reply.id, str(exc))
            if not exc.transient:
                continue
            break  # X is unwell or rate-limited: leave the rest for the next round
        with sessions.begin() as session:
            replies.mark_sent(session, reply.id, tweet_id)
        sent += 1
        log.info("replied %s to tweet %s (%s)", tweet_id, reply.in_reply_to_tweet_id, reply.kind)
    return DeliveryReport(sent=sent, failed=failed)
