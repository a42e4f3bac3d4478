"""Whether a new render request gets into the queue: bans, per-user quotas, the queue limit.

One decision over the database's state, made inside the transaction that then queues the job or
records the refusal, so the counts it reads are the ones it acts on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import jobs, users
from storage.db import is_postgres
from storage.models import User, utcnow


class Refused(str, enum.Enum):
    """Why a request was not queued (stored as the post's reason; the bot words the reply)."""

    BANNED = "banned"
    OVER_QUOTA = "over_quota"
    QUEUE_FULL = "queue_full"


@dataclass(frozen=True)
class Limits:
    per_user_per_day: int  # renders one user may have queued in any 24 hours
    queue_limit: int  # jobs waiting or in progress, all users together


@dataclass(frozen=True)
class Admission:
    refused: Refused | None  # None: admitted
    user_id: int  # who asked (``storage.users``): what the job is filed under
    priority: int = 0
    detail: str = ""

    @property
    def admitted(self) -> bool:
        return self.refused is None


DAY = timedelta(days=1)


def admit(
    session: Session, *, platform: str, user_ref: str, username: str, limits: Limits, now: datetime | None = None,
    priority: int = 0,
) -> Admission:
    """Decide on one request of user ``user_ref`` of ``platform`` (recorded as seen).

    Priority users skip the quota and the queue limit, not a ban. ``priority`` is one the request
    brings (a web API key's): its job gets it, but it skips nothing (a key has its own quota).
    """
    now = now or utcnow()
    user = users.seen(session, platform, user_ref, username)
    if is_postgres(session):
        # One admission per user at a time: two requests at once (the web's) must not both take
        # the last slot of a quota. (SQLite's transactions take the write lock up front.)
        session.execute(select(User.id).where(User.id == user.id).with_for_update())
    return _decide(session, user, limits, now=now, priority=priority)


def foresee(
    session: Session, *, platform: str, user_ref: str, limits: Limits, earlier_by_user: int = 0, earlier: int = 0,
    now: datetime | None = None,
) -> Refused | None:
    """The refusal ``admit`` will give a request of ``user_ref``, read before anything is fetched
    for it and without writing: a photo is not downloaded for a request that cannot get in.

    ``earlier_by_user`` and ``earlier``: requests of this user, and of everyone, that the same
    poll admits before this one (not in the database yet).
    """
    now = now or utcnow()
    user = users.find(session, platform, user_ref)
    return _decide(session, user, limits, now=now, earlier_by_user=earlier_by_user, earlier=earlier).refused


def _decide(
    session: Session, user: User | None, limits: Limits, *, now: datetime, earlier_by_user: int = 0, earlier: int = 0,
    priority: int = 0,
) -> Admission:
    user_id = user.id if user is not None else 0
    if user is not None and user.banned:
        return Admission(Refused.BANNED, user_id, detail=user.ban_reason or "banned")
    if user is not None and user.priority > 0:
        return Admission(None, user_id, priority=max(user.priority, priority))
    used = (jobs.submitted_since(session, user.id, now - DAY) if user is not None else 0) + earlier_by_user
    if used >= limits.per_user_per_day:
        return Admission(Refused.OVER_QUOTA, user_id, detail=f"{used} of {limits.per_user_per_day} renders in 24 h")
    waiting = jobs.waiting(session) + earlier
    if waiting >= limits.queue_limit:
        return Admission(Refused.QUEUE_FULL, user_id, detail=f"{waiting} jobs waiting, limit {limits.queue_limit}")
    return Admission(None, user_id, priority=priority)
