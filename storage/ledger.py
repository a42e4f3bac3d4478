"""The API ledger: every call to a platform and its estimated cost, each endpoint's rate-limit
window, usage caps.

Before each call the bot asks ``decide``; after it, it records what the platform said. Spend is
estimated from the platform's prices and kept per platform and calendar month (UTC).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from storage.models import ApiCall, RateWindow, utcnow


class Need(int, enum.Enum):
    """How much a call matters; the budget stops the least needed first."""

    OPTIONAL = 0  # acknowledgements: nice, not owed
    NEW_WORK = 1  # reading new mentions, which leads to new renders and replies
    OWED = 2  # replies to work already accepted: results, refusals, failure notices


@dataclass(frozen=True)
class Budget:
    monthly_usd: float
    optional_until: float  # fraction of the month's budget after which optional calls stop
    new_work_until: float  # ... after which no new work is taken; owed calls stop at 1.0


@dataclass(frozen=True)
class Go:
    pass


@dataclass(frozen=True)
class Wait:
    """Not now: the window or a usage cap frees up at ``until``."""

    until: datetime
    reason: str
    capped: bool = False  # the platform's usage cap (a billing period), not a rate-limit window


@dataclass(frozen=True)
class Stop:
    """Not this month: the budget forbids it."""

    reason: str


Decision = Go | Wait | Stop


def month_start(now: datetime) -> datetime:
    return now.astimezone(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def spent(session: Session, *, platform: str | None = None, now: datetime | None = None) -> float:
    """Estimated spend this calendar month, in USD: on ``platform``, or on all of them."""
    since = month_start(now or utcnow())
    query = select(func.coalesce(func.sum(ApiCall.cost_usd), 0.0)).where(ApiCall.at >= since)
    if platform is not None:
        query = query.where(ApiCall.platform == platform)
    return float(session.scalar(query) or 0.0)


def spent_by_platform(session: Session, *, now: datetime | None = None) -> dict[str, float]:
    """Estimated spend this calendar month on each platform called, in USD."""
    since = month_start(now or utcnow())
    query = select(ApiCall.platform, func.sum(ApiCall.cost_usd)).where(ApiCall.at >= since).group_by(ApiCall.platform)
    return {platform: float(cost or 0.0) for platform, cost in session.execute(query)}


def decide(
    session: Session, platform: str, endpoint: str, need: Need, budget: Budget, *, now: datetime | None = None
) -> Decision:
    """May the bot call ``endpoint`` of ``platform`` now, for a call of this ``need``?"""
    now = now or utcnow()
    window = session.get(RateWindow, (platform, endpoint))
    if window is not None:
        if window.capped_until is not None and window.capped_until > now:
            return Wait(window.capped_until, f"{endpoint}: the platform's usage cap reached", capped=True)
        if window.remaining <= 0 and window.reset_at > now:
            return Wait(window.reset_at, f"{endpoint}: rate-limit window used up ({window.limit} calls)")
    used = spent(session, platform=platform, now=now) / budget.monthly_usd if budget.monthly_usd > 0 else float("inf")
    if used >= 1.0:
        return Stop(f"the month's API budget of ${budget.monthly_usd:.2f} is spent")
    if need is Need.NEW_WORK and used >= budget.new_work_until:
        return Stop(f"{used:.0%} of the month's API budget spent: taking no new work")
    if need is Need.OPTIONAL and used >= budget.optional_until:
        return Stop(f"{used:.0%} of the month's API budget spent: optional posts are off")
    return Go()


def record_call(
    session: Session, platform: str, endpoint: str, *, status: int | None, cost_usd: float, now: datetime | None = None
) -> None:
    session.add(ApiCall(platform=platform, endpoint=endpoint, status=status, cost_usd=cost_usd, at=now or utcnow()))


def record_window(
    session: Session, platform: str, endpoint: str, *, limit: int, remaining: int, reset_at: datetime
) -> None:
    """Keep the window the platform reported."""
    values = {"limit": limit, "remaining": remaining, "reset_at": reset_at}
    _upsert_window(session, platform, endpoint, insert=values, update=values)


def record_cap(session: Session, platform: str, endpoint: str, *, until: datetime) -> None:
    """The platform said a usage cap is hit: no such call until ``until``."""
    _upsert_window(
        session, platform, endpoint,
        insert={"limit": 0, "remaining": 0, "reset_at": until, "capped_until": until},
        update={"capped_until": until},
    )


def _upsert_window(
    session: Session, platform: str, endpoint: str, *, insert: dict[str, object], update: dict[str, object]
) -> None:
    """Insert ``endpoint``'s window, or update it if it is there, in one statement.

    Several workers record the same endpoint's first window at once: a read then an insert let
    two of them insert it, and PostgreSQL refused the second (a duplicate key, and a failed job).
    ``INSERT ... ON CONFLICT DO UPDATE`` (PostgreSQL and SQLite alike) cannot race.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement: postgresql.Insert | sqlite.Insert = postgresql.insert(RateWindow)
    elif dialect == "sqlite":
        statement = sqlite.insert(RateWindow)
    else:
        raise NotImplementedError(f"rate windows are kept on PostgreSQL or SQLite, not {dialect}")
    now = utcnow()
    statement = statement.values(platform=platform, endpoint=endpoint, updated_at=now, **insert)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[RateWindow.platform, RateWindow.endpoint], set_={**update, "updated_at": now}
        )
    )
    # A copy of the row this session already holds is stale now: read it afresh when next used.
    cached = session.identity_map.get(identity_key(RateWindow, (platform, endpoint)))
    if cached is not None:
        session.expire(cached)


def windows(session: Session) -> list[RateWindow]:
    return list(session.scalars(select(RateWindow).order_by(RateWindow.platform, RateWindow.endpoint)))


def calls_by_day(session: Session, *, since: datetime) -> list[tuple[str, int, float]]:
    """(day, calls, cost) since ``since``, for the admin's chart."""
    day = func.date(ApiCall.at)
    rows = session.execute(
        select(day, func.count(), func.sum(ApiCall.cost_usd)).where(ApiCall.at >= since).group_by(day).order_by(day)
    )
    return [(str(d), int(n), float(c or 0.0)) for d, n, c in rows]
