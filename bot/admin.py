"""What an admin can see and do: the one set of functions behind ``forger`` and the admin pages.

Each function takes the caller's session (the CLI command or the web request owns the
transaction) and returns plain frozen dataclasses, so the CLI can print them as a table or JSON
and the pages can render them, without either knowing the tables. The queries themselves live in
``storage.reports``; what is decided here (filters checked, ETAs, stored data of any age made
displayable) is the same for both.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from bot.errors import ForgerError
from bot.options import RenderOptions
from storage import alerts, jobs, ledger, posts, reports, users
from storage.admission import DAY
from storage.db import database_size
from storage.errors import IllegalTransition, ImagesDeleted
from storage.models import Job, JobState, User, utcnow
from storage.reports import ImageRole

T = TypeVar("T")


class AdminError(ForgerError):
    """An admin's request that cannot be done (no such job or user, a job in the wrong state)."""


@dataclass(frozen=True)
class QueueRow:
    id: int
    user: str  # as they were called when asking
    user_id: int | None  # who asked (None: a request from no one known)
    state: str
    age_s: float
    position: int | None
    progress: float | None  # 0..1 while rendering
    eta_s: float | None  # seconds until likely done (``storage.jobs.eta``)
    attempts: int
    priority: int
    error: str | None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a longer list: its rows, how many there are in all, which page of how many."""

    rows: list[T]
    total: int
    number: int  # from 1
    size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))


@dataclass(frozen=True)
class Event:
    at: datetime
    from_state: str | None
    to_state: str
    reason: str
    worker: str | None


@dataclass(frozen=True)
class JobDetail:
    row: QueueRow
    platform: str | None  # where it was asked for (None: from no post)
    post_ref: str | None  # the post that asked
    text: str
    options: dict[str, object]  # what the user asked for besides the images (strength, colours, faces)
    options_unknown: bool  # stored options this version cannot read: ``options`` shows them as stored
    reply_ref: str | None  # the post that carried the result
    lease_owner: str | None
    lease_expires_at: datetime | None
    held_until: datetime | None  # queued but not to be claimed before then (a backoff, a rate-limit reset)
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    render_s: float | None
    eta_s: float | None
    images: dict[str, int]  # role -> bytes stored (0: none)
    history: list[Event]


@dataclass(frozen=True)
class UserInfo:
    id: int
    platform: str
    user_ref: str  # the user's id on the platform
    username: str
    banned: bool
    ban_reason: str | None
    priority: int
    renders_last_day: int
    jobs_total: int


@dataclass(frozen=True)
class Window:
    platform: str
    endpoint: str
    limit: int
    remaining: int
    reset_at: datetime
    capped_until: datetime | None


@dataclass(frozen=True)
class Stats:
    jobs_by_state: dict[str, int]
    renders_last_hour: int
    renders_last_day: int
    median_render_s: float | None
    median_wait_s: float | None
    api_calls_this_month: int
    spent_usd: float
    budget_usd: float
    windows: list[Window]
    calls_by_platform: dict[str, int]  # this month
    spent_by_platform: dict[str, float]  # this month, USD
    alerts_last_day: int = 0  # storage.alerts: e.g. mentions lost beyond a platform's reach
    latest_alert: str | None = None
    database_bytes: int = 0  # how much room the database takes (``forger db prune`` keeps it in bounds)


def to_json(value: Any) -> Any:
    """A dataclass (or list of them) as JSON-ready data: datetimes as ISO 8601 strings."""
    if isinstance(value, list):
        return [to_json(v) for v in value]
    data = asdict(value) if hasattr(value, "__dataclass_fields__") else value
    if isinstance(data, dict):
        return {k: to_json(v) for k, v in data.items()}
    if isinstance(data, datetime):
        return data.isoformat()
    return data


def _row(job: Job, now: datetime, position: int | None, median_render_s: float | None) -> QueueRow:
    progress = jobs.progress(job)
    return QueueRow(
        id=job.id, user=job.author_username or "", user_id=job.user_id, state=job.state.value,
        age_s=(now - job.created_at).total_seconds(), position=position, progress=progress,
        eta_s=jobs.eta(median_render_s, job.state, position, progress), attempts=job.attempts,
        priority=job.priority, error=job.error,
    )


# The jobs or users one page of the admin pages shows; each page says how many there are in all.
PAGE = 50


def _filter(session: Session, states: tuple[str, ...], user: str | None) -> reports.JobFilter:
    """The jobs asked for; AdminError naming an unknown state."""
    known = [s.value for s in JobState]
    unknown = [s for s in states if s not in known]
    if unknown:
        raise AdminError(f"unknown state {', '.join(map(repr, unknown))} (known: {', '.join(known)})")
    if not user:
        return reports.JobFilter(states=tuple(JobState(s) for s in states))
    # The person, by id, so that a user who renamed is seen with all their jobs (each keeps
    # the name it was asked under); a name nobody has now matches what jobs were asked as.
    found = users.by_name(session, user)
    return reports.JobFilter(
        states=tuple(JobState(s) for s in states), user_id=found.id if found else None,
        username=None if found else user.removeprefix("@"),
    )


def queue(
    session: Session, *, states: tuple[str, ...] = (), user: str | None = None, limit: int = 200,
    offset: int = 0, now: datetime | None = None,
) -> list[QueueRow]:
    """Jobs, newest first, optionally only in some states or of one user; queued jobs alone are
    listed in the order workers take them, the next first."""
    now = now or utcnow()
    found = reports.jobs_page(session, _filter(session, states, user), limit=limit, offset=offset)
    places = jobs.positions(session, now=now)
    per_job = jobs.median_render_s(session)
    return [_row(job, now, places.get(job.id), per_job) for job in found]


def queue_size(session: Session, *, states: tuple[str, ...] = (), user: str | None = None) -> int:
    """How many jobs ``queue`` would list without its limit."""
    return reports.jobs_count(session, _filter(session, states, user))


def queue_page(
    session: Session, *, states: tuple[str, ...] = (), user: str | None = None, number: int = 1, size: int = PAGE,
    now: datetime | None = None,
) -> Page[QueueRow]:
    """Page ``number`` (from 1) of ``queue``, with the count of all: the same few queries for any page."""
    rows = queue(session, states=states, user=user, limit=size, offset=(max(1, number) - 1) * size, now=now)
    total = queue_size(session, states=states, user=user)
    return Page(rows, total, max(1, number), size)


# Ids beyond a 64-bit integer column are no job's (and would be the database's error, not ours).
MAX_ID = 2**63 - 1


def _job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id) if 0 < job_id <= MAX_ID else None
    if job is None:
        raise AdminError(f"no job {job_id}")
    return job


def shown_options(stored: object) -> tuple[dict[str, object], bool]:
    """A job's options to show, and whether they are as stored because this version cannot read them
    (an older or newer version's, or damaged): stored data of any shape must still display."""
    try:
        return RenderOptions.from_json(stored).to_json(), False  # type: ignore[arg-type]
    except (ValueError, TypeError, AttributeError):
        if isinstance(stored, dict):
            return {str(k): v for k, v in stored.items()}, True
        return {"stored": stored}, True


def job(session: Session, job_id: int, *, workers: int = 1, now: datetime | None = None) -> JobDetail:
    """Everything about one job: its request, its history, its timings, its images."""
    now = now or utcnow()
    found = _job(session, job_id)
    post = posts.get(session, found.platform, found.post_ref) if found.platform and found.post_ref else None
    options, unknown = shown_options(found.options)
    place = jobs.position(session, job_id, now=now)
    per_job = jobs.median_render_s(session)
    return JobDetail(
        row=_row(found, now, place, per_job),
        platform=found.platform, post_ref=found.post_ref, text=post.text if post else "",
        options=options, options_unknown=unknown,
        reply_ref=found.reply_ref, lease_owner=found.lease_owner, lease_expires_at=found.lease_expires_at,
        held_until=jobs.held_until(found, now),
        created_at=found.created_at, started_at=found.started_at, finished_at=found.finished_at,
        render_s=found.render_s, eta_s=jobs.eta(per_job, found.state, place, jobs.progress(found), workers=workers),
        images={str(role): size for role, size in reports.image_sizes(session, job_id).items()},
        history=[
            Event(e.at, e.from_state.value if e.from_state else None, e.to_state.value, e.reason, e.worker)
            for e in jobs.history(session, job_id)
        ],
    )


def image(session: Session, job_id: int, role: ImageRole) -> bytes | None:
    """One of the job's three images (encoded as received or rendered), None if not there yet."""
    return reports.image(session, _job(session, job_id).id, role)


def retry(session: Session, job_id: int, *, by: str) -> None:
    """Put a failed job back in the queue with fresh attempts."""
    try:
        jobs.retry(session, _job(session, job_id).id, reason=f"retried by {by}")
    except IllegalTransition as exc:
        raise AdminError(f"job {job_id} is {exc.current}: only failed jobs can be retried") from exc
    except ImagesDeleted as exc:
        raise AdminError(str(exc)) from exc


def cancel(session: Session, job_id: int, *, by: str) -> None:
    """Stop a job that has not been replied to (a worker painting it stops at its next beat)."""
    try:
        jobs.cancel(session, _job(session, job_id).id, reason=f"cancelled by {by}")
    except IllegalTransition as exc:
        raise AdminError(f"job {job_id} is {exc.current}: it can no longer be cancelled") from exc


# Who an action is for: a user's id (the pages, where any name works) or their name (the CLI).
Who = int | str


def _user(session: Session, who: Who) -> User:
    if isinstance(who, int):
        found = users.get(session, who) if 0 < who <= MAX_ID else None
        if found is None:
            raise AdminError(f"no user {who}")
        return found
    found = users.by_name(session, who)
    if found is None:
        raise AdminError(f"no user @{who.removeprefix('@')} has written to the bot")
    return found


def user(session: Session, who: Who, *, now: datetime | None = None) -> UserInfo:
    found = _user(session, who)
    since = (now or utcnow()) - DAY
    total = reports.jobs_by_user(session, [found.id]).get(found.id, 0)
    return _info(found, total, reports.jobs_by_user(session, [found.id], since=since).get(found.id, 0))


def users_page(session: Session, *, number: int = 1, size: int = PAGE, now: datetime | None = None) -> Page[UserInfo]:
    """Page ``number`` (from 1) of everyone, by name, with their counts: four queries, for any page."""
    since = (now or utcnow()) - DAY
    number = max(1, number)
    found = reports.users_page(session, limit=size, offset=(number - 1) * size)
    ids = [u.id for u in found]
    totals, recent = reports.jobs_by_user(session, ids), reports.jobs_by_user(session, ids, since=since)
    rows = [_info(u, totals.get(u.id, 0), recent.get(u.id, 0)) for u in found]
    return Page(rows, reports.users_count(session), number, size)


def _info(found: User, jobs_total: int, renders_last_day: int) -> UserInfo:
    return UserInfo(
        id=found.id, platform=found.platform, user_ref=found.user_ref, username=found.username,
        banned=found.banned, ban_reason=found.ban_reason, priority=found.priority,
        renders_last_day=renders_last_day, jobs_total=jobs_total,
    )


def ban(session: Session, who: Who, *, reason: str) -> list[int]:
    """Ban the user: no replies, no renders; their jobs not yet posted are cancelled (their ids)."""
    found = _user(session, who)
    users.ban(session, found, reason)
    return jobs.cancel_by(session, found.id, reason=f"@{found.username} banned: {reason}")


def unban(session: Session, who: Who) -> None:
    users.unban(session, _user(session, who))


def set_priority(session: Session, who: Who, priority: int) -> None:
    """The user's requests go before those of users with a lower priority, the queued ones too."""
    found = _user(session, who)
    users.set_priority(session, found, priority)
    jobs.reprioritise(session, found.id, priority)


def stats(session: Session, *, budget_usd: float, now: datetime | None = None) -> Stats:
    """The queue, the renders and the API spend at a glance."""
    now = now or utcnow()
    waits = reports.recent_waits_s(session)
    calls = reports.calls_since(session, ledger.month_start(now))
    recent_alerts = alerts.since(session, now - DAY)
    return Stats(
        jobs_by_state={state.value: count for state, count in jobs.counts(session).items()},
        renders_last_hour=reports.replied_since(session, now - timedelta(hours=1)),
        renders_last_day=reports.replied_since(session, now - DAY),
        median_render_s=jobs.median_render_s(session),
        median_wait_s=statistics.median(waits) if waits else None,
        api_calls_this_month=sum(calls.values()),
        spent_usd=ledger.spent(session, now=now),
        budget_usd=budget_usd,
        windows=[
            Window(w.platform, w.endpoint, w.limit, w.remaining, w.reset_at, w.capped_until)
            for w in ledger.windows(session)
        ],
        calls_by_platform=calls,
        spent_by_platform=ledger.spent_by_platform(session, now=now),
        alerts_last_day=len(recent_alerts),
        database_bytes=database_size(session.connection()),
        latest_alert=recent_alerts[0].message if recent_alerts else None,
    )
