"""The render queue: jobs, their legal transitions and history, claims under a lease, progress.

A worker claims the best job (highest priority, then oldest) with one locking statement and holds
it under a lease that it renews while it paints. A worker that dies stops renewing; once the
lease has lapsed the job is claimed again, until it has been tried ``max_attempts`` times. A job
painted waits for the outbox (``storage.replies``) to post its result, holding no lease.

On PostgreSQL the claim is ``SELECT ... FOR UPDATE SKIP LOCKED`` then ``UPDATE``: concurrent
workers skip each other's rows instead of queueing on them. SQLite has no row locks (it drops
``FOR UPDATE`` silently), so there every transaction is ``BEGIN IMMEDIATE`` (``storage.db``),
which takes the database's single write lock before reading.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session

from storage.db import add_to_sums, is_postgres
from storage.errors import IllegalTransition, ImagesDeleted, LeaseLost
from storage.models import Job, JobEvent, JobEventDay, JobState, Reply, utcnow

# Where a job may go from each state; anything else is a bug worth raising on.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RENDERING, JobState.FAILED, JobState.CANCELLED}),
    JobState.RENDERING: frozenset({JobState.UPLOADING, JobState.QUEUED, JobState.FAILED, JobState.CANCELLED}),
    JobState.UPLOADING: frozenset({JobState.REPLIED, JobState.FAILED}),
    JobState.REPLIED: frozenset(),
    # An admin's retry; or its result, given up on, turned out to be posted after all.
    JobState.FAILED: frozenset({JobState.QUEUED, JobState.REPLIED}),
    JobState.CANCELLED: frozenset(),
}
ACTIVE = (JobState.RENDERING,)  # states that hold a lease
WAITING = (JobState.QUEUED, JobState.RENDERING, JobState.UPLOADING)  # not finished yet


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs to do a job, detached from any session."""

    id: int
    # The post that asked, to be answered with the result; None for a request from no post.
    platform: str | None
    post_ref: str | None
    author_username: str | None
    content_image: bytes | None  # None only once the retention deleted it (never for a job to paint)
    style_image: bytes | None  # None when the style is a gallery painting: ``style_painting`` names it
    style_painting: str | None
    attempts: int
    lease_owner: str
    # Set when an earlier attempt painted the picture but could not post it: no need to paint again.
    result_image: bytes | None
    render_s: float | None
    options: dict[str, object] | None


def enqueue(
    session: Session,
    *,
    content_image: bytes,
    style_image: bytes | None = None,
    style_painting: str | None = None,
    platform: str | None = None,
    post_ref: str | None = None,
    user_id: int | None = None,
    author_username: str | None = None,
    priority: int = 0,
    options: dict[str, object] | None = None,
    token_hash: str | None = None,
) -> Job:
    """Add a render request to the queue.

    A request from a post names it (``platform``, ``post_ref``: recorded by ``storage.posts`` in
    the same transaction) and is answered there; one from no post has neither, and is found again
    by ``token_hash`` (a web request's: ``by_token``). The style is an image (``style_image``) or a
    gallery painting's key (``style_painting``), not both.
    """
    if (platform is None) != (post_ref is None):
        raise ValueError("a job's origin is a platform and a post, or neither")
    if (style_image is None) == (style_painting is None):
        raise ValueError("a job's style is an image or a gallery painting's key, one of the two")
    job = Job(
        platform=platform,
        post_ref=post_ref,
        user_id=user_id,
        author_username=author_username,
        content_image=content_image,
        style_image=style_image,
        style_painting=style_painting,
        state=JobState.QUEUED,
        priority=priority,
        options=options,
        token_hash=token_hash,
    )
    session.add(job)
    session.flush()
    _record(session, job, None, JobState.QUEUED, "queued from a mention" if post_ref else "queued")
    return job


def sweep(session: Session, *, max_attempts: int, now: datetime | None = None) -> list[Job]:
    """Jobs whose lease lapsed (their worker died) go back to the queue, or fail for good after
    ``max_attempts``; returns the ones that failed, so that their authors can be told."""
    now = now or utcnow()
    lapsed = select(Job).where(Job.state.in_(ACTIVE), Job.lease_expires_at < now).order_by(Job.id)
    given_up = []
    for stale in session.scalars(lapsed.with_for_update(skip_locked=True) if is_postgres(session) else lapsed):
        reason = f"lease of {stale.lease_owner} lapsed (worker gone?)"
        if stale.attempts >= max_attempts:
            _move(session, stale, JobState.FAILED, f"{reason}; gave up after {stale.attempts} attempts")
            stale.error = f"gave up after {stale.attempts} attempts; last: {stale.error or reason}"
            stale.finished_at = now
            given_up.append(stale)
        else:
            _move(session, stale, JobState.QUEUED, reason)
        stale.lease_owner = stale.lease_expires_at = None
    return given_up


def claim_next(
    session: Session,
    *,
    worker: str,
    lease_s: float,
    max_attempts: int,
    platform: str | None = None,
    now: datetime | None = None,
) -> ClaimedJob | None:
    """Claim the best job for ``worker`` under a lease of ``lease_s``; None when nothing is due.

    ``platform``: only a job asked for there (or from no post), for a worker that answers on it.
    Jobs whose lease lapsed are swept first (``sweep``). On SQLite the transaction already holds
    the write lock (``storage.db``: BEGIN IMMEDIATE).
    """
    now = now or utcnow()
    lock = is_postgres(session)
    sweep(session, max_attempts=max_attempts, now=now)

    best = (
        select(Job)
        .where(Job.state == JobState.QUEUED, or_(Job.not_before.is_(None), Job.not_before <= now))
        .order_by(Job.priority.desc(), Job.id)
        .limit(1)
    )
    if platform is not None:
        best = best.where(or_(Job.platform.is_(None), Job.platform == platform))
    job = session.scalar(best.with_for_update(skip_locked=True) if lock else best)
    if job is None:
        return None
    _move(session, job, JobState.RENDERING, f"claimed by {worker}", worker=worker)
    job.attempts += 1
    job.lease_owner = worker
    job.lease_expires_at = now + timedelta(seconds=lease_s)
    job.not_before = None
    job.started_at = now
    job.progress_iteration = job.progress_total = 0
    return ClaimedJob(
        id=job.id,
        platform=job.platform,
        post_ref=job.post_ref,
        author_username=job.author_username,
        content_image=job.content_image,
        style_image=job.style_image,
        style_painting=job.style_painting,
        attempts=job.attempts,
        lease_owner=worker,
        result_image=job.result_image,
        render_s=job.render_s,
        options=job.options,
    )


def _held(session: Session, job_id: int, worker: str) -> Job:
    """The job, if ``worker`` still holds its lease; else LeaseLost (it lapsed, or an admin acted)."""
    job = session.get_one(Job, job_id, with_for_update=is_postgres(session))
    if job.state not in ACTIVE or job.lease_owner != worker:
        raise LeaseLost(job_id, worker, job.state.value)
    return job


def heartbeat(
    session: Session, job_id: int, *, worker: str, lease_s: float,
    iteration: int | None = None, total: int | None = None, now: datetime | None = None,
) -> None:
    """Renew the lease (and store progress); raises LeaseLost if the job is no longer ours."""
    job = _held(session, job_id, worker)
    job.lease_expires_at = (now or utcnow()) + timedelta(seconds=lease_s)
    if iteration is not None:
        job.progress_iteration = iteration
    if total is not None:
        job.progress_total = total


def mark_painted(
    session: Session, job_id: int, *, worker: str, result_image: bytes, render_s: float,
) -> None:
    """The picture is painted: keep it, and give up the lease. Its result is posted by the outbox
    (owed in the same transaction), or it is kept, for a job from no post (``mark_posted``)."""
    job = _held(session, job_id, worker)
    _move(session, job, JobState.UPLOADING, f"rendered in {render_s:.1f} s", worker=worker)
    job.result_image = result_image
    job.render_s = render_s
    job.progress_iteration = job.progress_total
    job.lease_owner = job.lease_expires_at = None


def mark_posted(session: Session, job_id: int, *, reply_ref: str | None) -> None:
    """The result is posted (as ``reply_ref``): recorded, so that it is never posted again. A job
    from no post has nothing to answer (``reply_ref`` None): its result is kept."""
    job = session.get_one(Job, job_id, with_for_update=is_postgres(session))
    reason = f"replied with post {reply_ref}" if reply_ref is not None else "painted; no post to answer"
    _move(session, job, JobState.REPLIED, reason)
    job.reply_ref = reply_ref
    job.error = None
    job.finished_at = utcnow()


def mark_failed(session: Session, job_id: int, *, worker: str | None, error: str) -> None:
    """The job will not be done; ``error`` says why (it is shown to admins)."""
    job = _held(session, job_id, worker) if worker else session.get_one(Job, job_id)
    _move(session, job, JobState.FAILED, error, worker=worker)
    job.error = error
    job.finished_at = utcnow()
    job.lease_owner = job.lease_expires_at = None


def release(
    session: Session, job_id: int, *, worker: str, error: str, max_attempts: int,
    not_before: datetime | None = None, counts: bool = True,
) -> bool:
    """Give a job back after a transient failure: queued again, or failed once out of attempts.

    ``not_before`` keeps it from being claimed again until then (a backoff, a rate-limit reset);
    ``counts=False`` gives the attempt back (waiting for a platform is not the job's failure). Returns True
    if it will be tried again.
    """
    job = _held(session, job_id, worker)
    job.lease_owner = job.lease_expires_at = None
    if not counts:
        job.attempts -= 1
    if job.attempts >= max_attempts:
        _move(session, job, JobState.FAILED, f"{error}; gave up after {job.attempts} attempts", worker=worker)
        job.error = f"gave up after {job.attempts} attempts; last: {error}"
        job.finished_at = utcnow()
        return False
    _move(session, job, JobState.QUEUED, error, worker=worker)
    job.error = error
    job.not_before = not_before
    return True


def cancel(session: Session, job_id: int, *, reason: str) -> None:
    """Stop a job that has not been replied to; a worker painting it loses its lease."""
    _cancel(session, session.get_one(Job, job_id, with_for_update=is_postgres(session)), reason)


def _cancel(session: Session, job: Job, reason: str) -> None:
    _move(session, job, JobState.CANCELLED, reason)
    job.finished_at = utcnow()
    job.lease_owner = job.lease_expires_at = None


def cancel_by(session: Session, user_id: int, *, reason: str) -> list[int]:
    """Cancel every job of user ``user_id`` that may still be painted (queued or painting); their ids.

    A job being posted is left to finish: its picture is painted and on its way.
    """
    waiting = select(Job).where(Job.user_id == user_id, Job.state.in_((JobState.QUEUED, JobState.RENDERING)))
    cancelled = []
    for job in session.scalars(waiting.with_for_update() if is_postgres(session) else waiting):
        _cancel(session, job, reason)
        cancelled.append(job.id)
    return cancelled


def reprioritise(session: Session, user_id: int, priority: int) -> None:
    """Give user ``user_id``'s queued jobs ``priority`` (a job takes its author's when it is queued)."""
    waiting = select(Job).where(Job.user_id == user_id, Job.state == JobState.QUEUED)
    for job in session.scalars(waiting):
        job.priority = priority


def retry(session: Session, job_id: int, *, reason: str) -> None:
    """Put a failed job back in the queue with a fresh set of attempts; ImagesDeleted if its
    photos are gone (the retention deleted them)."""
    job = session.get_one(Job, job_id, with_for_update=is_postgres(session))
    if job.images_deleted_at is not None:
        raise ImagesDeleted(job.id, job.images_deleted_at)
    _move(session, job, JobState.QUEUED, reason)
    job.attempts = 0
    job.error = None
    job.finished_at = None
    job.not_before = None


def _move(session: Session, job: Job, wanted: JobState, reason: str, *, worker: str | None = None) -> None:
    if wanted not in TRANSITIONS[job.state]:
        raise IllegalTransition(job.id, job.state.value, wanted.value)
    _record(session, job, job.state, wanted, reason, worker=worker)
    job.state = wanted


def _record(
    session: Session, job: Job, old: JobState | None, new: JobState, reason: str, *, worker: str | None = None
) -> None:
    session.add(JobEvent(job_id=job.id, from_state=old, to_state=new, reason=reason, worker=worker))


# -- reading ------------------------------------------------------------------------------------


def get(session: Session, job_id: int) -> Job:
    return session.get_one(Job, job_id)


def by_post(session: Session, platform: str, post_ref: str) -> Job | None:
    """The job asked for by a post, if it queued one."""
    return session.scalar(select(Job).where(Job.platform == platform, Job.post_ref == post_ref))


def by_token(session: Session, token_hash: str) -> Job | None:
    """The web request whose token hashes to ``token_hash`` (``storage.api_keys.digest``), if any."""
    return session.scalar(select(Job).where(Job.token_hash == token_hash))


def history(session: Session, job_id: int) -> list[JobEvent]:
    """Every transition of the job, oldest first."""
    return list(session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)))


def counts(session: Session) -> dict[JobState, int]:
    """How many jobs are in each state (every state present, zero where none)."""
    found: dict[JobState, int] = {state: 0 for state in JobState}
    for job_state, count in session.execute(select(Job.state, func.count()).group_by(Job.state)):
        found[job_state] = count
    return found


def waiting(session: Session) -> int:
    """Jobs not finished yet (queued or in a worker's hands): what the global queue limit counts."""
    return session.scalar(select(func.count()).select_from(Job).where(Job.state.in_(WAITING))) or 0


def _due(now: datetime) -> ColumnElement[bool]:
    """Queued jobs a worker may claim now: not held back until later (a backoff, a rate-limit reset)."""
    return (Job.state == JobState.QUEUED) & or_(Job.not_before.is_(None), Job.not_before <= now)


def positions(session: Session, *, now: datetime | None = None) -> dict[int, int]:
    """Every job due, by id: 1 for the next a worker will take (one query, for whole pages)."""
    due = select(Job.id).where(_due(now or utcnow())).order_by(Job.priority.desc(), Job.id)
    return {job_id: place for place, job_id in enumerate(session.scalars(due), start=1)}


def held_until(job: Job, now: datetime) -> datetime | None:
    """Until when a queued job may not be claimed (a backoff, a rate-limit reset); None if it may be now."""
    if job.state is JobState.QUEUED and job.not_before is not None and job.not_before > now:
        return job.not_before
    return None


def position(session: Session, job_id: int, *, now: datetime | None = None) -> int | None:
    """1 for the next job a worker will take; None if the job is not queued, or held back."""
    now = now or utcnow()
    job = session.get_one(Job, job_id)
    if job.state is not JobState.QUEUED or held_until(job, now) is not None:
        return None
    return _ahead(session, job.id, job.priority, now) + 1


def _ahead(session: Session, job_id: int, priority: int, now: datetime) -> int:
    """How many due jobs a worker will take before job ``job_id`` (of ``priority``)."""
    ahead = select(func.count()).select_from(Job).where(
        _due(now), or_(Job.priority > priority, (Job.priority == priority) & (Job.id < job_id)),
    )
    return session.scalar(ahead) or 0


@dataclass(frozen=True)
class Glance:
    """A job's state and progress, read in one light query (no images, no ORM object): what a
    caller polling for its job needs."""

    id: int
    state: JobState
    priority: int
    not_before: datetime | None
    progress_iteration: int
    progress_total: int
    user_id: int | None
    created_at: datetime
    finished_at: datetime | None


_GLANCE = (Job.id, Job.state, Job.priority, Job.not_before, Job.progress_iteration, Job.progress_total,
           Job.user_id, Job.created_at, Job.finished_at)


def glance_by_token(session: Session, token_hash: str) -> Glance | None:
    """The job whose token hashes to ``token_hash``, glanced at; None if there is none."""
    row = session.execute(select(*_GLANCE).where(Job.token_hash == token_hash)).one_or_none()
    return Glance(*row) if row is not None else None


def glances_by_token(session: Session, token_hashes: Collection[str]) -> dict[str, Glance]:
    """The jobs whose tokens hash to ``token_hashes`` (those that exist), by hash: one query."""
    found: dict[str, Glance] = {}
    hashes = list(token_hashes)
    for start in range(0, len(hashes), 500):  # an IN list of bounded length
        rows = session.execute(select(Job.token_hash, *_GLANCE).where(Job.token_hash.in_(hashes[start:start + 500])))
        for token_hash, *values in rows:
            found[token_hash] = Glance(*values)
    return found


def glance_position(session: Session, job: Glance, *, now: datetime | None = None) -> int | None:
    """``position`` of a glanced job (one count query, and none unless it is queued and due)."""
    now = now or utcnow()
    if job.state is not JobState.QUEUED or (job.not_before is not None and job.not_before > now):
        return None
    return _ahead(session, job.id, job.priority, now) + 1


def estimate_s(per_job_s: float | None, job: Glance, place: int | None, *, workers: int = 1) -> float | None:
    """``eta_s`` of a glanced job, given the median render time and its position."""
    if per_job_s is None:
        return None
    if job.state is JobState.RENDERING:
        done = job.progress_iteration / job.progress_total if job.progress_total else 0.0
        return per_job_s * (1 - done)
    if place is None:
        return None
    return per_job_s * (1 + (place - 1) / max(1, workers))


def median_render_s(session: Session, *, last: int = 50) -> float | None:
    """The median render time of the last ``last`` renders, or None before the first."""
    query = select(Job.render_s).where(Job.render_s.is_not(None)).order_by(Job.id.desc()).limit(last)
    times = sorted(t for t in session.scalars(query) if t is not None)
    if not times:
        return None
    middle = len(times) // 2
    return times[middle] if len(times) % 2 else (times[middle - 1] + times[middle]) / 2


def progress(job: Job) -> float | None:
    """How far a job being painted has got, 0..1; None for one that is not being painted."""
    if job.state not in ACTIVE or not job.progress_total:
        return None
    return job.progress_iteration / job.progress_total


def eta(per_job_s: float | None, state: JobState, place: int | None, done: float | None, *,
        workers: int = 1) -> float | None:
    """Seconds until a job is likely done, from the median render time; None if unknown.

    A queued job at ``place`` waits for those ahead of it, then renders; one being painted has the
    rest of its own render to go (``done`` of it painted). The one formula for every page and reply.
    """
    if per_job_s is None:
        return None
    if state is JobState.RENDERING:
        return per_job_s * (1 - (done or 0.0))
    if place is None:
        return None
    return per_job_s * (1 + (place - 1) / max(1, workers))


@dataclass(frozen=True)
class PostWindow:
    """How many posts a platform still takes: ``remaining`` until ``reset_at``, then ``limit`` in
    each ``window_s`` (X: 100 posts per 15 minutes)."""

    limit: int
    remaining: int
    reset_at: datetime
    window_s: float


# A worker is alive while it holds a lease, or did something to a job this recently: an idle
# worker looks at the queue every few seconds, but leaves no trace until it claims a job.
WORKER_SEEN_S = 600.0


def workers_alive(session: Session, *, now: datetime | None = None, within_s: float = WORKER_SEEN_S) -> int:
    """How many workers are alive now: holding an unexpired lease, or seen at a job within ``within_s``."""
    now = now or utcnow()
    holding = select(Job.lease_owner).where(Job.state.in_(ACTIVE), Job.lease_expires_at > now, Job.lease_owner.is_not(None))
    recent = select(JobEvent.worker).where(JobEvent.at >= now - timedelta(seconds=within_s), JobEvent.worker.is_not(None))
    names = set(session.scalars(holding)) | set(session.scalars(recent))
    return len(names)


def eta_s(
    session: Session, job_id: int, *, posts: PostWindow | None = None, workers: int | None = None,
    now: datetime | None = None,
) -> float | None:
    """Seconds until the job's result is likely posted; None if no honest guess can be made (no
    render timed yet, no worker alive, the job not waiting).

    The one ETA of the bot (``eta`` its formula). A queued job waits for the jobs ahead of it,
    shared among the workers alive now (``workers_alive``, unless ``workers`` says how many),
    then renders; one being painted has the rest of its render to go. Its result
    then waits for the platform's post window (``posts``): every reply owed before it (the
    results ahead, and the texts and acknowledgements already owed) goes out first, and a
    window spent waits for its reset.
    """
    now = now or utcnow()
    per_job = median_render_s(session)
    if per_job is None:
        return None
    job = session.get_one(Job, job_id)
    if job.state is JobState.RENDERING:
        painted, place = eta(per_job, job.state, None, progress(job) or 0.0) or 0.0, 1
    else:
        found = position(session, job_id, now=now)
        alive = workers_alive(session, now=now) if workers is None else workers
        if found is None or alive <= 0:
            return None  # nobody is painting: no time can be promised
        place = found
        painted = eta(per_job, job.state, place, None, workers=alive) or 0.0
    if posts is None:
        return painted
    ahead = _unsent_replies(session, job.platform, now) + place  # its own result is the last of them
    return max(painted, post_wait_s(ahead, posts, now=now))


def post_wait_s(count: int, window: PostWindow, *, now: datetime) -> float:
    """Seconds until ``count`` posts have gone out through ``window`` (posting as fast as it allows)."""
    if window.reset_at <= now:  # the window has reset since it was read: a whole one is free
        remaining, reset_in = window.limit, window.window_s
    else:
        remaining, reset_in = window.remaining, (window.reset_at - now).total_seconds()
    if count <= remaining:
        return 0.0
    if window.limit <= 0:
        return math.inf
    later_windows = math.ceil((count - remaining) / window.limit)
    return reset_in + (later_windows - 1) * window.window_s


def _unsent_replies(session: Session, platform: str | None, now: datetime) -> int:
    """Replies owed on ``platform`` and not posted yet, owed within the last day (older ones were
    given up on, or wait on something an ETA cannot see)."""
    query = select(func.count()).select_from(Reply).where(
        Reply.reply_ref.is_(None), Reply.created_at >= now - timedelta(days=1))
    if platform is not None:
        query = query.where(Reply.platform == platform)
    return session.scalar(query) or 0


def roll_up_events(session: Session, *, before: datetime, batch: int = 10_000) -> int:
    """Count the job transitions made before ``before`` into one row per day and state reached
    (``JobEventDay``), and delete them; returns how many were rolled up. A job's own history
    then starts after ``before`` (``history``)."""
    rolled = 0
    while ids := session.scalars(select(JobEvent.id).where(JobEvent.at < before).order_by(JobEvent.id).limit(batch)).all():
        gone = session.execute(
            delete(JobEvent).where(JobEvent.id.in_(ids)).returning(JobEvent.at, JobEvent.to_state)
            .execution_options(synchronize_session=False)
        ).all()
        sums: dict[tuple[object, ...], dict[str, object]] = {}
        for at, state in gone:
            day = sums.setdefault((at.date(), state.value if isinstance(state, JobState) else state), {"events": 0})
            day["events"] = int(day["events"]) + 1  # type: ignore[call-overload]
        add_to_sums(session, JobEventDay, sums, ("day", "to_state"))
        rolled += len(gone)
        if len(ids) < batch:
            break
    return rolled


def submitted_since(session: Session, user_id: int, since: datetime) -> int:
    """Jobs user ``user_id`` has had queued since ``since`` (cancelled ones too: they cost a slot)."""
    query = select(func.count()).select_from(Job).where(Job.user_id == user_id, Job.created_at >= since)
    return session.scalar(query) or 0


def first_submitted_since(session: Session, user_id: int, since: datetime) -> datetime | None:
    """When the oldest of user ``user_id``'s jobs since ``since`` was queued: a quota frees a slot
    a day after it."""
    query = select(func.min(Job.created_at)).where(Job.user_id == user_id, Job.created_at >= since)
    found = session.scalar(query)
    if found is not None and found.tzinfo is None:  # an aggregate is not typed: SQLite's is naive
        found = found.replace(tzinfo=UTC)
    return found
