"""The outbox's delivery: every post the bot owes (results and texts alike), posted exactly once.

Each reply is claimed before it is posted (``storage.replies``), so deliverers running at once
(the poller's process, ``forger deliver``) never post the same one together. One check makes a
post happen once: a reply an earlier attempt may have posted (a timeout, a 5xx, a deliverer that
died, a job painted before) is first looked for among the bot's replies to that post. So is the
picture before an apology for not posting it: X may have taken a last post the bot stopped waiting for.

A reply owed (a painted picture, an answer) waits out an outage: it is tried with growing
backoff for ``deliver_for_s`` from its first failure, however many attempts that takes; optional
ones (acknowledgements) get ``max_attempts``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from bot import results, retry
from bot.compose import addressed, fit
from bot.errors import Forbidden, Gone, PlatformError
from bot.platform import Image, Platform
from storage import jobs, replies
from storage.ledger import Need
from storage.models import Reply

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryReport:
    sent: int
    failed: int


DELIVER_FOR_S = 6 * 3600.0  # how long a painted picture is tried through an outage, by default


def deliver(
    sessions: sessionmaker[Session], platform: Platform, *, by: str, max_attempts: int,
    deliver_for_s: float = DELIVER_FOR_S, clock: Callable[[], float] = time.time,
) -> DeliveryReport:
    """Post every reply due on ``platform``; a failed post is counted and tried again after a backoff.

    ``by`` names this deliverer. While the platform refuses posts (a spent window, a usage cap)
    nothing is sent and no attempt is spent: waiting is not a reply's failure. A reply to a deleted
    post is given up at once. A result that cannot be posted (within ``deliver_for_s`` of its first
    failure) fails its job, and its author is told (when there is anyone to tell), unless it
    turns out to be posted after all; one posted completes its job.
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
            painted = results.painted(session, reply)
        image = results.picture(reply, painted, platform.limits)
        text = fit(reply.text, platform.limits.text)
        try:
            if results.apologises(reply):
                picture = platform.find_reply(reply.in_reply_to_ref, with_image=True)
                if picture is not None:
                    log.warning("reply %s not sent: the picture it apologises for was posted, as post %s",
                                reply.id, picture)
                    with sessions.begin() as session:
                        results.posted_after_all(session, reply, picture, max_attempts=max_attempts)
                    continue
            posted = _earlier(platform, reply, image) if reply.look_first or reply.attempts or reply.claimed_by else None
            if posted is None:
                need = Need.OPTIONAL if reply.optional else Need.OWED
                posted = platform.reply(reply.in_reply_to_ref, text, image=image, need=need)
        except PlatformError as exc:
            failed += 1
            now = clock()
            until = _deadline(reply, now, deliver_for_s)
            decision = retry.decide(exc, reply.attempts + 1, max_attempts=max_attempts, now=now, until=until)
            if decision.alert:
                log.error("ADMIN: %s", decision.alert)
            log.warning("reply %s to post %s not sent: %s (%s)", reply.id, reply.in_reply_to_ref, exc, decision.reason)
            at = datetime.fromtimestamp(decision.at, UTC) if decision.at else None
            with sessions.begin() as session:
                if not decision.counts:
                    replies.wait(session, reply.id, until=at, reason=str(exc))
                elif isinstance(exc, (Gone, Forbidden)) or (reply.job_id is not None and not decision.retry):
                    replies.give_up(session, reply.id, str(exc), max_attempts=max_attempts)  # never taken
                    _fail_job(session, reply, f"{exc} ({decision.reason})", tell=decision.tell_user)
                else:
                    replies.mark_attempt_failed(session, reply.id, str(exc), not_before=at,
                                                deliver_until=_utc(until) if until is not None else None)
            if not exc.transient:
                continue
            break  # the platform is unwell or rate-limited: leave the rest for the next round
        with sessions.begin() as session:
            replies.mark_sent(session, reply.id, posted)
            if reply.job_id is not None:
                jobs.mark_posted(session, reply.job_id, reply_ref=posted)
        sent += 1
        log.info("replied %s to post %s (%s)", posted, reply.in_reply_to_ref, reply.kind)
    return DeliveryReport(sent=sent, failed=failed)


def _deadline(reply: Reply, now: float, deliver_for_s: float) -> float | None:
    """Until when a reply owed is tried (``deliver_for_s`` from its first failure): a picture or
    an answer someone waits for; None for an optional one (an acknowledgement), which has
    ``max_attempts``."""
    if reply.optional:
        return None
    return reply.deliver_until.timestamp() if reply.deliver_until is not None else now + deliver_for_s


def _utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


def _earlier(platform: Platform, reply: Reply, image: Image | None) -> str | None:
    """The id of the bot's reply to the same post (with an image, or this text), if an earlier
    attempt posted it."""
    text = None if image is not None else fit(reply.text, platform.limits.text)
    posted = platform.find_reply(reply.in_reply_to_ref, text=text, with_image=image is not None)
    if posted is not None:
        log.warning("reply %s was posted by an earlier attempt as post %s", reply.id, posted)
    return posted


def _fail_job(session: Session, reply: Reply, error: str, *, tell: bool) -> None:
    """A result that will not be posted: its job fails, and its author is told if ``tell``."""
    if reply.job_id is None:
        return
    jobs.mark_failed(session, reply.job_id, worker=None, error=error)
    if tell:
        author = jobs.get(session, reply.job_id).author_username or ""
        replies.owe(session, platform=reply.platform, in_reply_to_ref=reply.in_reply_to_ref, kind=results.APOLOGY,
                    text=addressed(author, results.UNDELIVERABLE))
