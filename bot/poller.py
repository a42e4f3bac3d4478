"""The poller: read new mentions, queue the render requests, owe the others a reply.

Everything one poll decides is committed in one transaction together with the cursor, so the
cursor never moves past a mention whose job or reply was not saved; a mention seen again (an
overlap, a retry after a crash) is recognised by its id and not queued twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from bot.errors import MediaError
from bot.gateway import XGateway
from bot.interpret import Ignore, Refusal, RenderRequest, interpret
from storage import cursors, jobs, mentions, replies
from storage.admission import Limits, Refused, admit
from storage.models import Outcome

log = logging.getLogger(__name__)

MEDIA_FAILED = "I couldn't download your photos from X. Please try again in a moment."
OVER_QUOTA = "You've had your {quota} pictures for today. Send me more tomorrow!"
QUEUE_FULL = "My easel is full right now. Please send your photos again in a little while."


@dataclass(frozen=True)
class PollReport:
    seen: int = 0
    queued: int = 0
    refused: int = 0
    ignored: int = 0


def poll(sessions: sessionmaker[Session], gateway: XGateway, *, limits: Limits, page_size: int = 100) -> PollReport:
    """One poll: fetch mentions since the cursor, record what to do with each, move the cursor."""
    bot_id, _ = gateway.me()
    with sessions() as session:
        since_id = cursors.get(session, cursors.MENTIONS)
    found = gateway.mentions(bot_id, since_id=since_id, page_size=page_size)
    if not found:
        return PollReport()
    with sessions() as session:
        known = mentions.seen(session, [m.id for m in found])
    fresh = [m for m in found if m.id not in known]

    # Downloads happen before the transaction: no database lock is held while X is slow.
    decisions = []
    images: dict[str, tuple[bytes, bytes]] = {}
    for mention in fresh:
        decision = interpret(mention, bot_user_id=bot_id)
        if isinstance(decision, RenderRequest):
            try:
                images[mention.id] = (
                    gateway.download(decision.content.url or ""),
                    gateway.download(decision.style.url or ""),
                )
            except MediaError as exc:
                decision = Refusal(mention, f"download failed: {exc}", MEDIA_FAILED)
        decisions.append(decision)

    queued = refused = ignored = 0
    with sessions.begin() as session:
        for decision in decisions:
            m = decision.mention
            common = dict(tweet_id=m.id, author_id=m.author_id, author_username=m.author_username, text=m.text)
            if isinstance(decision, RenderRequest):
                admission = admit(session, author_id=m.author_id, author_username=m.author_username, limits=limits)
                if admission.refused is Refused.BANNED:
                    decision = Ignore(m, f"{Refused.BANNED.value}: {admission.detail}")
                elif admission.refused is not None:
                    text = OVER_QUOTA.format(quota=limits.per_user_per_day) if admission.refused is Refused.OVER_QUOTA else QUEUE_FULL
                    decision = Refusal(m, f"{admission.refused.value}: {admission.detail}", text)
            if isinstance(decision, RenderRequest):
                mentions.record(session, **common, outcome=Outcome.QUEUED)
                session.flush()  # the job's foreign key needs the mention row first
                content, style = images[m.id]
                jobs.enqueue(
                    session,
                    tweet_id=m.id,
                    author_id=m.author_id,
                    author_username=m.author_username,
                    content_image=content,
                    style_image=style,
                    priority=admission.priority,
                )
                queued += 1
            elif isinstance(decision, Refusal):
                mentions.record(session, **common, outcome=Outcome.REFUSED, reason=decision.reason)
                replies.owe(session, in_reply_to_tweet_id=m.id, kind="refusal", text=decision.reply)
                refused += 1
            else:
                assert isinstance(decision, Ignore)
                mentions.record(session, **common, outcome=Outcome.IGNORED, reason=decision.reason)
                ignored += 1
        newest = max(found, key=lambda m: int(m.id)).id
        cursors.put(session, cursors.MENTIONS, newest)
    log.info("poll: %d new mentions, %d queued, %d refused, %d ignored", len(fresh), queued, refused, ignored)
    return PollReport(seen=len(fresh), queued=queued, refused=refused, ignored=ignored)
