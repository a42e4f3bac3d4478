"""What an admin can see and do: the one set of functions behind ``forger`` and the dashboard.

Each function takes the caller's session (the CLI command or the web request owns the
transaction) and returns plain frozen dataclasses, so the CLI can print them as a table or JSON
and the dashboard can render them, without either knowing the tables.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from bot.errors import ForgerError
from bot.options import RenderOptions
from storage import alerts, jobs, ledger, posts, users
from storage.admission import DAY
from storage.errors import IllegalTransition
from storage.models import ApiCall, Job, JobState, RateWindow, User, utcnow

ImageRole = Literal["content", "style", "result"]


class AdminError(ForgerError):
    """An admin's request that cannot be done (no such job or user, a job in the wrong state)."""


@dataclass(frozen=True)
class QueueRow:
    id: int
    user: str
    state: str
    age_s: float
    position: int | None
    progress: float | None  # 0..1 while rendering
    attempts: int
    priority: int
    error: str | None


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
    alerts_last_day: int = 0  # storage.alerts: e.g. mentions lost beyond a platform's reach
    latest_alert: str | None = None


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


def _row(job: Job, now: datetime, position: int | None) -> QueueRow:
    progress = None
    if job.state in jobs.ACTIVE and job.progress_total:
        progress = job.progress_iteration / job.progress_total
    return QueueRow(
        id=job.id, user=job.author_username or "", state=job.state.value, age_s=(now - job.created_at).total_seconds(),
        position=position, progress=progress, attempts=job.attempts, priority=job.priority, error=job.error,
    )


# The most jobs one list shows (the CLI's --limit, the dashboard's pages); each says when there are more.
QUEUE_PAGE = 200


def queue(
    session: Session, *, states: tuple[str, ...] = (), user: str | None = None, limit: int = QUEUE_PAGE,
    now: datetime | None = None,
) -> list[QueueRow]:
    """Jobs, newest first, optionally only in some states or of one user; queued jobs alone are
    listed in the order workers take them, the next first."""
    now = now or utcnow()
    order = (Job.priority.desc(), Job.id.asc()) if states == ("queued",) else (Job.id.desc(),)
    query = _filtered(session, select(Job).order_by(*order).limit(limit), states, user)
    places = jobs.positions(session, now=now)
    return [_row(job, now, places.get(job.id)) for job in session.scalars(query)]


def queue_size(session: Session, *, states: tuple[str, ...] = (), user: str | None = None) -> int:
    """How many jobs ``queue`` would list without its limit."""
    return session.scalar(_filtered(session, select(func.count()).select_from(Job), states, user)) or 0


def _filtered(session: Session, query: Select[Any], states: tuple[str, ...], user: str | None) -> Select[Any]:
    if states:
        known = [s.value for s in JobState]
        unknown = [s for s in states if s not in known]
        if unknown:
            raise AdminError(f"unknown state {', '.join(map(repr, unknown))} (known: {', '.join(known)})")
        query = query.where(Job.state.in_([JobState(s) for s in states]))
    if user:
        # The person, by id, so that a user who renamed is seen with all their jobs (each keeps
        # the name it was asked under); a name nobody has now matches what jobs were asked as.
        found = users.by_name(session, user)
        name = func.lower(Job.author_username) == user.removeprefix("@").lower()
        query = query.where(Job.user_id == found.id if found is not None else name)
    return query


# Ids beyond a 64-bit integer column are no job's (and would be the database's error, not ours).
MAX_ID = 2**63 - 1


def _job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id) if 0 < job_id <= MAX_ID else None
    if job is None:
        raise AdminError(f"no job {job_id}")
    return job


def job(session: Session, job_id: int, *, workers: int = 1, now: datetime | None = None) -> JobDetail:
    """Everything about one job: its request, its history, its timings, its images."""
    now = now or utcnow()
    found = _job(session, job_id)
    post = posts.get(session, found.platform, found.post_ref) if found.platform and found.post_ref else None
    sizes = session.execute(
        select(func.length(Job.content_image), func.length(Job.style_image), func.length(Job.result_image))
        .where(Job.id == job_id)
    ).one()
    return JobDetail(
        row=_row(found, now, jobs.position(session, job_id, now=now)),
        platform=found.platform, post_ref=found.post_ref, text=post.text if post else "",
        options=RenderOptions.from_json(found.options).to_json(),
        reply_ref=found.reply_ref, lease_owner=found.lease_owner, lease_expires_at=found.lease_expires_at,
        held_until=jobs.held_until(found, now),
        created_at=found.created_at, started_at=found.started_at, finished_at=found.finished_at,
        render_s=found.render_s, eta_s=jobs.eta_s(session, job_id, workers=workers),
        images={"content": sizes[0] or 0, "style": sizes[1] or 0, "result": sizes[2] or 0},
        history=[
            Event(e.at, e.from_state.value if e.from_state else None, e.to_state.value, e.reason, e.worker)
            for e in jobs.history(session, job_id)
        ],
    )


def image(session: Session, job_id: int, role: ImageRole) -> bytes | None:
    """One of the job's three images (encoded as received or rendered), None if not there yet."""
    column = {"content": Job.content_image, "style": Job.style_image, "result": Job.result_image}[role]
    _job(session, job_id)
    return session.scalar(select(column).where(Job.id == job_id))


def retry(session: Session, job_id: int, *, by: str) -> None:
    """Put a failed job back in the queue with fresh attempts."""
    try:
        jobs.retry(session, _job(session, job_id).id, reason=f"retried by {by}")
    except IllegalTransition as exc:
        raise AdminError(f"job {job_id} is {exc.current}: only failed jobs can be retried") from exc


def cancel(session: Session, job_id: int, *, by: str) -> None:
    """Stop a job that has not been replied to (a worker painting it stops at its next beat)."""
    try:
        jobs.cancel(session, _job(session, job_id).id, reason=f"cancelled by {by}")
    except IllegalTransition as exc:
        raise AdminError(f"job {job_id} is {exc.current}: it can no longer be cancelled") from exc


def _user(session: Session, name: str) -> User:
    found = users.by_name(session, name)
    if found is None:
        raise AdminError(f"no user @{name.removeprefix('@')} has written to the bot")
    return found


def user(session: Session, name: str, *, now: datetime | None = None) -> UserInfo:
    found = _user(session, name)
    total = session.scalar(select(func.count()).select_from(Job).where(Job.user_id == found.id)) or 0
    return _info(found, total, jobs.submitted_since(session, found.id, (now or utcnow()) - DAY))


def everyone(session: Session, *, now: datetime | None = None) -> list[UserInfo]:
    """Every user with their counts: three queries, however many users."""
    since = (now or utcnow()) - DAY
    totals = _jobs_by_author(session)
    recent = _jobs_by_author(session, Job.created_at >= since)
    return [_info(found, totals.get(found.id, 0), recent.get(found.id, 0)) for found in users.everyone(session)]


def _jobs_by_author(session: Session, *where: ColumnElement[bool]) -> dict[int | None, int]:
    query = select(Job.user_id, func.count()).where(*where).group_by(Job.user_id)
    return {author: count for author, count in session.execute(query)}


def _info(found: User, jobs_total: int, renders_last_day: int) -> UserInfo:
    return UserInfo(
        id=found.id, platform=found.platform, user_ref=found.user_ref, username=found.username,
        banned=found.banned, ban_reason=found.ban_reason, priority=found.priority,
        renders_last_day=renders_last_day, jobs_total=jobs_total,
    )


def ban(session: Session, name: str, *, reason: str) -> list[int]:
    """Ban the user: no replies, no renders; their jobs not yet posted are cancelled (their ids)."""
    found = _user(session, name)
    users.ban(session, found, reason)
    return jobs.cancel_by(session, found.id, reason=f"@{found.username} banned: {reason}")


def unban(session: Session, name: str) -> None:
    users.unban(session, _user(session, name))


def set_priority(session: Session, name: str, priority: int) -> None:
    """The user's requests go before those of users with a lower priority, the queued ones too."""
    found = _user(session, name)
    users.set_priority(session, found, priority)
    jobs.reprioritise(session, found.id, priority)


def stats(session: Session, *, budget_usd: float, now: datetime | None = None) -> Stats:
    """The queue, the renders and the API spend at a glance."""
    now = now or utcnow()

    def finished_since(since: datetime) -> int:
        query = select(func.count()).select_from(Job).where(Job.state == JobState.REPLIED, Job.finished_at >= since)
        return session.scalar(query) or 0

    recent = list(session.execute(
        select(Job.created_at, Job.started_at).where(Job.started_at.is_not(None)).order_by(Job.id.desc()).limit(200)
    ))
    waits = [(started - created).total_seconds() for created, started in recent if started is not None]
    month = ledger.month_start(now)
    calls = session.scalar(select(func.count()).select_from(ApiCall).where(ApiCall.at >= month)) or 0
    recent_alerts = alerts.since(session, now - DAY)
    return Stats(
        jobs_by_state={state.value: count for state, count in jobs.counts(session).items()},
        renders_last_hour=finished_since(now - timedelta(hours=1)),
        renders_last_day=finished_since(now - DAY),
        median_render_s=jobs.median_render_s(session),
        median_wait_s=statistics.median(waits) if waits else None,
        api_calls_this_month=calls,
        spent_usd=ledger.spent(session, now=now),
        budget_usd=budget_usd,
        windows=[
            Window(w.platform, w.endpoint, w.limit, w.remaining, w.reset_at, w.capped_until)
            for w in session.scalars(select(RateWindow).order_by(RateWindow.platform, RateWindow.endpoint))
        ],
        alerts_last_day=len(recent_alerts),
        latest_alert=recent_alerts[0].message if recent_alerts else None,
    )
