"""What admins read: pages of jobs and users, counts, image sizes, render and wait times.

Read-only queries for ``bot.admin`` (which the CLI and the admin pages share). Each page of a
list costs a fixed number of queries, however long the list: the counts for a page's users are
one grouped query over those users only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from storage.models import ApiCall, Job, JobState, User

ImageRole = Literal["content", "style", "result"]


@dataclass(frozen=True)
class JobFilter:
    """Jobs in some ``states`` (all if empty), of the user ``user_id`` or, for a name no user has
    now, asked for under ``username``."""

    states: tuple[JobState, ...] = ()
    user_id: int | None = None
    username: str | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.states:
            query = query.where(Job.state.in_(self.states))
        if self.user_id is not None:
            query = query.where(Job.user_id == self.user_id)
        elif self.username is not None:
            query = query.where(func.lower(Job.author_username) == self.username.lower())
        return query


def jobs_page(session: Session, where: JobFilter, *, limit: int, offset: int = 0) -> list[Job]:
    """A page of jobs: queued ones alone in the order workers take them, else the newest first."""
    order = (Job.priority.desc(), Job.id.asc()) if where.states == (JobState.QUEUED,) else (Job.id.desc(),)
    return list(session.scalars(where.apply(select(Job)).order_by(*order).limit(limit).offset(offset)))


def jobs_count(session: Session, where: JobFilter) -> int:
    return session.scalar(where.apply(select(func.count()).select_from(Job))) or 0


def image_sizes(session: Session, job_id: int) -> dict[ImageRole, int]:
    """Bytes stored of each of the job's images (0: none), without loading them."""
    sizes = session.execute(
        select(func.length(Job.content_image), func.length(Job.style_image), func.length(Job.result_image))
        .where(Job.id == job_id)
    ).one()
    return {"content": sizes[0] or 0, "style": sizes[1] or 0, "result": sizes[2] or 0}


def image(session: Session, job_id: int, role: ImageRole) -> bytes | None:
    column = {"content": Job.content_image, "style": Job.style_image, "result": Job.result_image}[role]
    return session.scalar(select(column).where(Job.id == job_id))


def users_page(session: Session, *, limit: int, offset: int = 0) -> list[User]:
    """A page of users by name (then id, so that pages never overlap)."""
    return list(session.scalars(select(User).order_by(func.lower(User.username), User.id).limit(limit).offset(offset)))


def users_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def jobs_by_user(session: Session, user_ids: Sequence[int], *, since: datetime | None = None) -> dict[int, int]:
    """How many jobs each of ``user_ids`` has had queued (since ``since``): one query."""
    if not user_ids:
        return {}
    where: list[ColumnElement[bool]] = [Job.user_id.in_(user_ids)]
    if since is not None:
        where.append(Job.created_at >= since)
    query = select(Job.user_id, func.count()).where(*where).group_by(Job.user_id)
    return {user_id: count for user_id, count in session.execute(query) if user_id is not None}


def replied_since(session: Session, since: datetime) -> int:
    """Jobs whose result was posted (or kept) since ``since``."""
    query = select(func.count()).select_from(Job).where(Job.state == JobState.REPLIED, Job.finished_at >= since)
    return session.scalar(query) or 0


def recent_waits_s(session: Session, *, last: int = 200) -> list[float]:
    """Seconds from request to first claim of the last ``last`` jobs claimed."""
    rows = session.execute(
        select(Job.created_at, Job.started_at).where(Job.started_at.is_not(None)).order_by(Job.id.desc()).limit(last)
    )
    return [(started - created).total_seconds() for created, started in rows if started is not None]


def calls_since(session: Session, since: datetime) -> dict[str, int]:
    """Calls made to each platform's API since ``since``."""
    query = select(ApiCall.platform, func.count()).where(ApiCall.at >= since).group_by(ApiCall.platform)
    return {platform: int(count) for platform, count in session.execute(query)}
