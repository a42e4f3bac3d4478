"""The poller: read new mentions, queue the render requests, owe the others a reply.

Everything one poll decides is committed in one transaction together with the cursor, so the
cursor never moves past a mention whose job or reply was not saved; a mention seen again is
recognised by its id and not queued twice. That makes overlap safe, and some platforms need it
(X lists a mention after newer ones at times): each poll reads again from where the platform
says (``Platform.read_from``), up to ``overlap_s`` before the previous poll.

A platform may serve only so many mentions (X the newest 800); a walk that reaches that many may
have lost older ones: it is logged and kept as an alert for the admin (``storage.alerts``). While
mentions come in full pages the poll is busy: the next one comes sooner (``Pace``) and reads
again only ``busy_overlap_s`` back, so that a flood neither outruns the platform's reach nor
spends the read window on the overlap. On the very first poll, mentions older than
``first_start_max_age_s`` are ignored: a new bot does not answer last year's posts.

The refusals that need no photo (a ban, a spent quota, a full queue) are decided first, so a
flood costs no downloads beyond the requests that can get in. Photos are downloaded before the
transaction (no database lock is held while a platform is slow), all of a poll's at once, under
one deadline (``download_deadline_s``): a slow host holds the poll that long at most, not that
long per photo. A download that fails for a passing reason (a timeout, a 5xx, the deadline)
loses nothing: the mention is not recorded and the cursor stays below it, so the next poll tries
it again, until the mention is ``hold_max_s`` old.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot import compose, refusals
from bot.config import Config
from bot.errors import MediaError, PhotoBadShape, PhotoProblem, PhotoTooSmall
from bot.gallery import Gallery
from bot.interpret import (
    Decision,
    Help,
    Ignore,
    Refusal,
    RenderRequest,
    interpret,
    needs_parent,
    shape_refusal,
    small_refusal,
)
from bot.media import Downloader, Photo
from bot.platform import Media, Platform, Post
from bot.refusals import RefusalKind
from storage import alerts, cursors, jobs, posts, replies, users
from storage.jobs import PostWindow
from storage.admission import Limits, Refused, admit, foresee
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
    # After a busy poll (a full page of new mentions), the overlap read again is this short: a
    # flood's mentions are not read again and again, and the read window lasts.
    busy_overlap_s: float = 10.0
    # All of a poll's photos are fetched at once (``download_workers`` at a time) within this.
    download_deadline_s: float = 20.0
    download_workers: int = 8
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
        download_deadline_s=media.time_limit_s,
        gallery=Gallery.load(config.gallery.extra_dirs),
        downloader=Downloader(
            max_bytes=media.max_bytes,
            time_limit_s=media.time_limit_s,
            max_pixels=media.max_pixels,
            min_side=bot.min_photo_side,
            max_ratio=bot.max_aspect_ratio,
        ),
    )


@dataclass(frozen=True)
class PollReport:
    seen: int = 0
    queued: int = 0
    refused: int = 0
    ignored: int = 0
    held: int = 0  # left for the next poll after a passing download failure
    read: int = 0  # mentions the platform served, new or not
    busy: bool = False  # a full page of new mentions came: poll again sooner
    gap: bool = False  # the platform's reach was met: older mentions may be lost


@dataclass
class Pace:
    """When to poll a platform next: ``interval_s``, or ``busy_interval_s`` while polls are busy.

    Mentions beyond a platform's reach (X's 800) are lost if more arrive between two polls, so
    while pages come back full the bot polls sooner. ``busy_interval_s`` keeps within the read
    window: on X, 300 mention reads per 15 minutes are one every 3 s, and a busy poll reads a few
    pages. A read refused for a spent window is refused without a request until its reset.

    For ``settle_s`` after a busy poll (the overlap's length), polls read back only the short
    overlap: a flood's mentions are not served again at every poll, which would spend the read
    window (X bills them once a day, but counts every request). The price: a mention X lists
    more than ``busy_overlap_s`` late, in a flood, can be missed.
    """

    interval_s: float
    busy_interval_s: float
    settle_s: float = 120.0
    full: bool = False  # the last poll was busy
    busy_at: float | None = None  # when the last busy poll was (epoch seconds)

    def after(self, report: PollReport, now: float) -> float:
        """Note a poll's report, made at ``now``; the seconds until the next poll."""
        self.full = report.busy
        if report.busy:
            self.busy_at = now
        return self.next_s

    def busy(self, now: float) -> bool:
        """Whether a poll at ``now`` reads back only the short overlap."""
        return self.busy_at is not None and now - self.busy_at < self.settle_s

    @property
    def next_s(self) -> float:
        return min(self.busy_interval_s, self.interval_s) if self.full else self.interval_s


@dataclass(frozen=True)
class _Images:
    content: bytes
    style: bytes | None  # a photo sent as the painting
    painting: str | None = None  # or a gallery painting's key: referenced, not copied


def poll(
    sessions: sessionmaker[Session],
    platform: Platform,
    *,
    limits: Limits,
    page_size: int = 100,
    policy: PollPolicy,
    clock: Callable[[], float] = time.time,
    busy: bool = False,
) -> PollReport:
    """One poll: fetch mentions since the cursor, record what to do with each, move the cursor.

    ``busy``: a poll was busy a short while ago (``Pace.busy``), so only ``busy_overlap_s`` is read again.
    """
    now = clock()
    account = platform.me()
    with sessions() as session:
        cursor = cursors.get(session, platform.name, cursors.MENTIONS)
        last_read = cursors.updated_at(session, platform.name, cursors.MENTIONS)
    if cursor is None or last_read is None:
        batch = platform.mentions(since=None, start_time=now - policy.first_start_max_age_s, page_size=page_size)
    else:
        overlap = min(policy.overlap_s, policy.busy_overlap_s) if busy else policy.overlap_s
        since = platform.read_from(cursor, last_read=last_read.timestamp(), overlap_s=overlap)
        batch = platform.mentions(since=since, page_size=page_size)
    found = batch.mentions
    if not found:
        return PollReport()
    with sessions() as session:
        known = posts.seen(session, platform.name, [m.id for m in found])
        fresh = [m for m in found if m.id not in known]
        banned = users.banned(session, platform.name, sorted({m.author_id for m in fresh}))

    decisions: list[Decision] = []
    for mention in fresh:
        if cursor is None and _older(mention, now - policy.first_start_max_age_s):
            decisions.append(Ignore(mention, "older than the first start's limit"))
        elif mention.author_id in banned:  # not even a parent is looked up for them
            decisions.append(Ignore(mention, f"{Refused.BANNED.value}: {banned[mention.author_id]}"))
        else:
            decisions.append(_decide(mention, account.id, account.handle, platform, policy))
    with sessions() as session:
        decisions = _foresee(session, platform.name, decisions, limits)

    fetched = _download_all([d for d in decisions if isinstance(d, RenderRequest)], platform, policy)
    images: dict[str, _Images] = {}
    held: list[Post] = []
    recorded: list[Decision] = []
    for decision in decisions:
        if isinstance(decision, RenderRequest):
            mention = decision.mention
            got = fetched[mention.id]
            if isinstance(got, _PhotoFailed):
                if got.error.transient and not _older(mention, now - policy.hold_max_s):
                    log.warning("mention %s: %s not fetched (%s); trying again next poll", mention.id, got.which, got.error)
                    held.append(mention)
                    continue
                decision = _media_refusal(decision, got.which, got.error)
            else:
                images[mention.id] = got
        recorded.append(decision)

    # Stay below a held mention so that the next poll reads it again, however long the overlap.
    cursor_to = platform.cursor_after(found, held)
    # A walk cut off by the reach lost nothing if it reached back to a mention read before.
    gap = batch.maybe_gap and found[0].id not in known
    # Read before the transaction: the platform may keep it in the database too.
    window = platform.post_window() if policy.acknowledge and images else None
    with sessions.begin() as session:
        report = replace(
            _record(session, platform.name, recorded, images, limits=limits, policy=policy, now=now, window=window),
            held=len(held), read=len(found), busy=len(fresh) >= page_size, gap=gap,
        )
        if gap:
            _report_gap(session, platform.name, found, now)
        cursors.put(session, platform.name, cursors.MENTIONS, cursor_to, now=datetime.fromtimestamp(now, UTC))
    platform.mark_seen(cursor_to)  # recorded: the platform's read marker may move (Bluesky's updateSeen)
    log.info("poll: %d new mentions, %d queued, %d refused, %d ignored, %d held",
             report.seen, report.queued, report.refused, report.ignored, report.held)
    return report


def _report_gap(session: Session, platform: str, found: list[Post], now: float) -> None:
    """The platform's reach was met: mentions older than the oldest served may be lost. Logged,
    and kept as an alert for the admin pages."""
    oldest = found[0]
    when = f" (made {oldest.created_at:%Y-%m-%d %H:%M:%S} UTC)" if oldest.created_at else ""
    message = (f"{platform} served {len(found)} mentions, the most it serves: mentions older than post "
               f"{oldest.id}{when} may have been missed")
    log.warning("%s", message)
    alerts.raise_alert(session, kind=alerts.MENTION_GAP, platform=platform, message=message,
                       now=datetime.fromtimestamp(now, UTC))


def _foresee(session: Session, platform: str, decisions: list[Decision], limits: Limits) -> list[Decision]:
    """Requests that cannot get in (a ban, a spent quota, a full queue) refused before any photo
    of theirs is fetched; the poll's own earlier requests count towards the quota and the queue."""
    mine: Counter[str] = Counter()
    admitted = 0
    # Within one poll a refusal stands: a spent quota or a full queue only fills further.
    refused_users: dict[str, Refused] = {}
    full = False
    out: list[Decision] = []
    for decision in decisions:
        if isinstance(decision, RenderRequest):
            author = decision.mention.author_id
            refused = refused_users.get(author) or (Refused.QUEUE_FULL if full else None)
            if refused is None:
                refused = foresee(session, platform=platform, user_ref=author, limits=limits,
                                  earlier_by_user=mine[author], earlier=admitted)
                if refused is Refused.QUEUE_FULL:
                    full = True
                elif refused is not None:
                    refused_users[author] = refused
            if refused is None:
                mine[author] += 1
                admitted += 1
            else:
                decision = _refused(decision.mention, refused, "decided before fetching the photos", limits)
        out.append(decision)
    return out


def _refused(mention: Post, refused: Refused, detail: str, limits: Limits) -> Decision:
    """What a request refused by admission becomes: nothing for a ban, else a reply saying why."""
    if refused is Refused.BANNED:
        return Ignore(mention, f"{Refused.BANNED.value}: {detail}")
    if refused is Refused.OVER_QUOTA:
        return Refusal(mention, RefusalKind.OVER_QUOTA, f"over_quota: {detail}", refusals.over_quota(limits.per_user_per_day))
    return Refusal(mention, RefusalKind.QUEUE_FULL, f"queue_full: {detail}", refusals.queue_full())


def _decide(mention: Post, bot_id: str, bot_username: str, platform: Platform, policy: PollPolicy) -> Decision:
    parent = None
    if needs_parent(mention, policy.gallery) and mention.in_reply_to_id is not None:
        parent = platform.post(mention.in_reply_to_id)  # None: the parent is gone, rule 9 applies
        if parent is not None and parent.author_id == bot_id and parent.in_reply_to_id is not None:
            # A photo in reply to the bot's result: paint the photo that result was painted from.
            parent = platform.post(parent.in_reply_to_id) or parent
    return interpret(
        mention, bot_user_id=bot_id, bot_username=bot_username, gallery=policy.gallery, parent=parent,
        min_side=policy.downloader.min_side, max_ratio=policy.downloader.max_ratio,
    )


class _PhotoFailed(Exception):
    """A download failed: which image ("photo" or "painting") and why."""

    def __init__(self, which: str, error: MediaError) -> None:
        super().__init__(f"{which}: {error}")
        self.which = which
        self.error = error


def _download_all(
    requests: list[RenderRequest], platform: Platform, policy: PollPolicy
) -> dict[str, _Images | _PhotoFailed]:
    """Each request's two images (the picture, then the style: from the platform or the gallery),
    or why not, by mention id. Every photo is fetched at once, within one deadline for them all;
    one not fetched by then is a passing failure (the mention is read again next poll)."""
    tasks: dict[tuple[str, str], Future[Photo]] = {}
    done: set[Future[Photo]] = set()
    if any(isinstance(s, Media) for r in requests for s in (r.content, r.style)):
        pool = ThreadPoolExecutor(max_workers=policy.download_workers, thread_name_prefix="download")
        try:
            for request in requests:
                for which, source in (("photo", request.content), ("painting", request.style)):
                    if isinstance(source, Media):
                        tasks[(request.mention.id, which)] = pool.submit(
                            platform.download, source, policy.downloader, name=_named(_role(request, which)))
            done = wait(tasks.values(), timeout=policy.download_deadline_s).done
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # a late one ends within its own time limit
    found: dict[str, _Images | _PhotoFailed] = {}
    for request in requests:
        found[request.mention.id] = _images(request, tasks, done, policy.download_deadline_s)
    return found


def _images(
    request: RenderRequest, tasks: dict[tuple[str, str], Future[Photo]], done: set[Future[Photo]], deadline_s: float
) -> _Images | _PhotoFailed:
    images: list[bytes] = []
    for which, source in (("photo", request.content), ("painting", request.style)):
        if not isinstance(source, Media):
            continue  # a gallery painting: the job names it, no copy is stored
        role = _role(request, which)
        task = tasks[(request.mention.id, which)]
        if task not in done:
            return _PhotoFailed(role, MediaError(f"{_named(role)} was not fetched within the poll's {deadline_s:g} s",
                                                 transient=True, problem=PhotoProblem.UNREACHABLE))
        try:
            images.append(task.result().data)
        except MediaError as exc:
            return _PhotoFailed(role, exc)
    painting = request.painting
    return _Images(images[0], images[1] if painting is None else None, painting.key if painting else None)


def _role(request: RenderRequest, which: str) -> str:
    """What the reply calls an image: "painting", "photo", or "the photo you replied to" (rule 8)."""
    if which == "photo" and request.content not in request.mention.photos:
        return "the photo you replied to"
    return which


def _named(role: str) -> str:
    return role if role.startswith("the ") else f"the {role}"


def _media_refusal(request: RenderRequest, which: str, error: MediaError) -> Refusal:
    """The refusal of a photo that could not be had: the reply in plain words, the detail in the reason."""
    mention = request.mention
    if isinstance(error, PhotoTooSmall):
        return small_refusal(mention, which, error.width, error.height, error.min_side)
    if isinstance(error, PhotoBadShape):
        return shape_refusal(mention, which, error.width, error.height, error.max_ratio)
    reply = refusals.bad_photo(which, error.problem, width=error.width, height=error.height, limit=error.limit)
    return Refusal(mention, RefusalKind.BAD_PHOTO, f"{which} refused: {error}", reply)


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
    window: PostWindow | None = None,
) -> PollReport:
    """Write every decision in the caller's transaction: posts, jobs and the replies owed.

    ``window``: the platform's post window, which the acknowledgements' ETAs wait for."""
    moment = datetime.fromtimestamp(now, UTC)
    period = timedelta(seconds=policy.refusal_period_s)
    queued = refused = ignored = 0
    decided: set[tuple[str, str]] = set()  # (author, kind of reply) answered or not in this poll
    for decision in decisions:
        m = decision.mention
        common = dict(platform=platform, post_ref=m.id, author_ref=m.author_id, author_username=m.author_username,
                      text=m.text)
        priority, user_id = 0, None
        if isinstance(decision, RenderRequest):
            admission = admit(session, platform=platform, user_ref=m.author_id, username=m.author_username,
                              limits=limits)
            priority, user_id = admission.priority, admission.user_id
            if admission.refused is not None:
                decision = _refused(m, admission.refused, admission.detail, limits)
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
                style_painting=images[m.id].painting,
                priority=priority,
                options=decision.options.to_json(),
            )
            if policy.acknowledge:
                eta = jobs.eta_s(session, job.id, posts=window, now=moment)
                text = compose.acknowledgement(jobs.position(session, job.id, now=moment), eta)
                _owe(session, platform, m, "ack", text, moment, optional=True)
            queued += 1
        elif isinstance(decision, (Refusal, Help)):
            kind = decision.kind.reply_kind if isinstance(decision, Refusal) else refusals.HELP_KIND
            reason = decision.reason if isinstance(decision, Refusal) else "asked for help"
            # Once per kind and author in a poll: a flood's thousand refusals ask the database once.
            answer = (m.author_id, kind) not in decided and refusals.may_reply(
                last_told(session, platform=platform, author_ref=m.author_id, kind=kind), moment, period)
            decided.add((m.author_id, kind))
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
