"""The poller: read new mentions, queue the render requests, owe the others a reply.

Everything one poll decides is committed in one transaction together with the cursor, so the
cursor never moves past a mention whose job or reply was not saved; a mention seen again is
recognised by its id and not queued twice. That makes overlap safe, and some platforms need it
(X lists a mention after newer ones at times): each poll reads again from where the platform
says (``Platform.read_from``), up to ``overlap_s`` before the previous poll.

A platform may serve only so many mentions (X the newest 800); a walk that reaches that many may
have lost older ones, and says so in the log. On the very first poll, mentions older than
``first_start_max_age_s`` are ignored: a new bot does not answer last year's posts.

Photos are downloaded before the transaction (no database lock is held while a platform is
slow). A download that fails for a passing reason (a timeout, a 5xx) loses nothing: the mention
is not recorded and the cursor stays below it, so the next poll tries it again, until the
mention is ``hold_max_s`` old.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot import compose, refusals
from bot.config import Config
from bot.errors import MediaError, PhotoTooSmall
from bot.gallery import Gallery
from bot.interpret import Decision, Help, Ignore, Refusal, RenderRequest, interpret, needs_parent, small_refusal
from bot.media import Downloader
from bot.platform import Media, Platform, Post
from bot.refusals import RefusalKind
from storage import cursors, jobs, posts, replies
from storage.admission import Limits, Refused, admit
from storage.models import Outcome
from storage.refusals import last_told

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollPolicy:
    """How the poller reads and answers; ``policy_for(config)`` builds it from the settings."""

    overlap_s: float = 120.0
    # A mention whose photo cannot be fetched for a passing reason is held (read again at the
    # next poll) until it is this old; then it is refused, so that it stops holding the cursor.
    hold_max_s: float = 3600.0
    first_start_max_age_s: float = 3600.0
    refusal_period_s: float = 86_400.0
    acknowledge: bool = False
    gallery: Gallery = field(kw_only=True)
    downloader: Downloader = field(kw_only=True)


def policy_for(config: Config) -> PollPolicy:
    """The policy of ``config``: its gallery read (a ConfigError naming a bad folder), and a
    downloader with its own HTTP session. Built once per process (``Forger.create``)."""
    bot, media = config.bot, config.media
    return PollPolicy(
        overlap_s=bot.poll_overlap_s,
        first_start_max_age_s=bot.first_start_max_age_s,
        refusal_period_s=bot.refusal_period_s,
        acknowledge=bot.acknowledge,
        gallery=Gallery.load(config.gallery.extra_dirs),
        downloader=Downloader(
            max_bytes=media.max_bytes,
            time_limit_s=media.time_limit_s,
            max_pixels=media.max_pixels,
            min_side=bot.min_photo_side,
        ),
    )


@dataclass(frozen=True)
class PollReport:
    seen: int = 0
    queued: int = 0
    refused: int = 0
    ignored: int = 0
    held: int = 0  # left for the next poll after a passing download failure


@dataclass(frozen=True)
class _Images:
    content: bytes
    style: bytes


def poll(
    sessions: sessionmaker[Session],
    platform: Platform,
    *,
    limits: Limits,
    page_size: int = 100,
    policy: PollPolicy,
    clock: Callable[[], float] = time.time,
) -> PollReport:
    """One poll: fetch mentions since the cursor, record what to do with each, move the cursor."""
    now = clock()
    account = platform.me()
    with sessions() as session:
        cursor = cursors.get(session, platform.name, cursors.MENTIONS)
        last_read = cursors.updated_at(session, platform.name, cursors.MENTIONS)
    if cursor is None or last_read is None:
        batch = platform.mentions(since=None, start_time=now - policy.first_start_max_age_s, page_size=page_size)
    else:
        since = platform.read_from(cursor, last_read=last_read.timestamp(), overlap_s=policy.overlap_s)
        batch = platform.mentions(since=since, page_size=page_size)
    found = batch.mentions
    if batch.maybe_gap:
        log.warning(
            "%s served %d mentions, the most it serves: mentions older than post %s may have been missed",
            platform.name, len(found), found[0].id if found else "?",
        )
    if not found:
        return PollReport()
    with sessions() as session:
        known = posts.seen(session, platform.name, [m.id for m in found])
    fresh = [m for m in found if m.id not in known]

    decisions: list[Decision] = []
    images: dict[str, _Images] = {}
    held: list[Post] = []
    for mention in fresh:
        if cursor is None and _older(mention, now - policy.first_start_max_age_s):
            decisions.append(Ignore(mention, "older than the first start's limit"))
            continue
        decision = _decide(mention, account.id, account.handle, platform, policy)
        if isinstance(decision, RenderRequest):
            try:
                images[mention.id] = _download(decision, platform, policy)
            except _PhotoFailed as failed:
                if failed.error.transient and not _older(mention, now - policy.hold_max_s):
                    log.warning("mention %s: %s not fetched (%s); trying again next poll", mention.id, failed.which, failed.error)
                    held.append(mention)
                    continue
                decision = _media_refusal(decision, failed.which, failed.error)
        decisions.append(decision)

    # Stay below a held mention so that the next poll reads it again, however long the overlap.
    cursor_to = platform.cursor_after(found, held)
    with sessions.begin() as session:
        report = replace(
            _record(session, platform.name, decisions, images, limits=limits, policy=policy, now=now), held=len(held)
        )
        cursors.put(session, platform.name, cursors.MENTIONS, cursor_to, now=datetime.fromtimestamp(now, UTC))
    platform.mark_seen(cursor_to)  # recorded: the platform's read marker may move (Bluesky's updateSeen)
    log.info("poll: %d new mentions, %d queued, %d refused, %d ignored, %d held",
             report.seen, report.queued, report.refused, report.ignored, report.held)
    return report


def _decide(mention: Post, bot_id: str, bot_username: str, platform: Platform, policy: PollPolicy) -> Decision:
    parent = None
    if needs_parent(mention, policy.gallery) and mention.in_reply_to_id is not None:
        parent = platform.post(mention.in_reply_to_id)  # None: the parent is gone, rule 9 applies
        if parent is not None and parent.author_id == bot_id and parent.in_reply_to_id is not None:
            # A photo in reply to the bot's result: paint the photo that result was painted from.
            parent = platform.post(parent.in_reply_to_id) or parent
    return interpret(
        mention, bot_user_id=bot_id, bot_username=bot_username, gallery=policy.gallery, parent=parent,
        min_side=policy.downloader.min_side,
    )


class _PhotoFailed(Exception):
    """A download failed: which image ("photo" or "painting") and why."""

    def __init__(self, which: str, error: MediaError) -> None:
        super().__init__(f"{which}: {error}")
        self.which = which
        self.error = error


def _download(request: RenderRequest, platform: Platform, policy: PollPolicy) -> _Images:
    """The request's two images: the picture from the platform, the style from it or the gallery."""
    images = []
    for which, source in (("photo", request.content), ("painting", request.style)):
        if isinstance(source, Media):
            try:
                images.append(platform.download(source, policy.downloader, name=f"the {which}").data)
            except MediaError as exc:
                raise _PhotoFailed(which, exc) from exc
        else:
            images.append(source.image())
    return _Images(*images)


def _media_refusal(request: RenderRequest, which: str, error: MediaError) -> Refusal:
    mention = request.mention
    if isinstance(error, PhotoTooSmall):
        return small_refusal(mention, which, error.width, error.height, error.min_side)
    reason = str(error).removeprefix(f"the {which} ")
    return Refusal(mention, RefusalKind.BAD_PHOTO, f"{which} refused: {error}", refusals.bad_photo(which, reason))


def _older(mention: Post, limit: float) -> bool:
    return mention.created_at is not None and mention.created_at.timestamp() < limit


def _record(
    session: Session,
    platform: str,
    decisions: list[Decision],
    images: dict[str, _Images],
    *,
    limits: Limits,
    policy: PollPolicy,
    now: float,
) -> PollReport:
    """Write every decision in the caller's transaction: posts, jobs and the replies owed."""
    moment = datetime.fromtimestamp(now, UTC)
    period = timedelta(seconds=policy.refusal_period_s)
    queued = refused = ignored = 0
    for decision in decisions:
        m = decision.mention
        common = dict(platform=platform, post_ref=m.id, author_ref=m.author_id, author_username=m.author_username,
                      text=m.text)
        priority, user_id = 0, None
        if isinstance(decision, RenderRequest):
            admission = admit(session, platform=platform, user_ref=m.author_id, username=m.author_username,
                              limits=limits)
            priority, user_id = admission.priority, admission.user_id
            if admission.refused is Refused.BANNED:
                decision = Ignore(m, f"{Refused.BANNED.value}: {admission.detail}")
            elif admission.refused is Refused.OVER_QUOTA:
                reply = refusals.over_quota(limits.per_user_per_day)
                decision = Refusal(m, RefusalKind.OVER_QUOTA, f"over_quota: {admission.detail}", reply)
            elif admission.refused is Refused.QUEUE_FULL:
                reply = refusals.queue_full()
                decision = Refusal(m, RefusalKind.QUEUE_FULL, f"queue_full: {admission.detail}", reply)
        if isinstance(decision, RenderRequest):
            posts.record(session, **common, outcome=Outcome.QUEUED)
            session.flush()  # the job's foreign key needs the post's row first
            job = jobs.enqueue(
                session,
                platform=platform,
                post_ref=m.id,
                user_id=user_id,
                author_username=m.author_username,
                content_image=images[m.id].content,
                style_image=images[m.id].style,
                priority=priority,
                options=decision.options.to_json(),
            )
            if policy.acknowledge:
                text = compose.acknowledgement(jobs.position(session, job.id), jobs.eta_s(session, job.id))
                _owe(session, platform, m, "ack", text, moment, optional=True)
            queued += 1
        elif isinstance(decision, (Refusal, Help)):
            kind = decision.kind.reply_kind if isinstance(decision, Refusal) else refusals.HELP_KIND
            reason = decision.reason if isinstance(decision, Refusal) else "asked for help"
            told = last_told(session, platform=platform, author_ref=m.author_id, kind=kind)
            answer = refusals.may_reply(told, moment, period)
            if not answer:
                reason += " (not answered: told within the period)"
            posts.record(session, **common, outcome=Outcome.REFUSED, reason=reason)
            if answer:
                names = [p.nickname for p in policy.gallery.paintings]
                text = decision.reply if isinstance(decision, Refusal) else compose.help_text(names)
                _owe(session, platform, m, kind, text, moment)
            refused += 1
        else:
            posts.record(session, **common, outcome=Outcome.IGNORED, reason=decision.reason)
            ignored += 1
    return PollReport(seen=len(decisions), queued=queued, refused=refused, ignored=ignored)


def _owe(
    session: Session, platform: str, mention: Post, kind: str, text: str, moment: datetime, *, optional: bool = False
) -> None:
    reply = replies.owe(session, platform=platform, in_reply_to_ref=mention.id, kind=kind,
                        text=compose.addressed(mention.author_username, text), optional=optional)
    reply.created_at = moment  # the poll's clock: what the one-reply-per-period rule compares
