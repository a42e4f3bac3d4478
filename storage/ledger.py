"""The API ledger: every call to a platform and its estimated cost, each endpoint's rate-limit
window, usage caps.

Before each call the bot asks ``decide``; after it, it records what the platform said. Spend is
estimated from the platform's prices and kept per platform and calendar month (UTC).

A platform that bills a resource once a day however often it serves it (X) records what it
served with ``bill_reads``, which says how many were new that day: only those cost. Each billed
resource names its author, and the new-work stop counts no author's spend beyond their share of
the month's budget: one user's flood of mentions cannot stop the bot taking work from everyone.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from storage.db import add_to_sums
from storage.models import ApiCall, ApiCallDay, BilledRead, RateWindow, utcnow


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
    # The most of the month's budget one author's posts may count for, towards the stops of
    # optional calls and new work (what the platform served of theirs beyond it is still spent,
    # and counts towards the hard stop at 1.0).
    author_share: float = 1.0


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
    """Estimated spend this calendar month, in USD: on ``platform``, or on all of them (the days
    rolled up count too, where the roll-up reaches into this month)."""
    since = month_start(now or utcnow())
    query = select(func.coalesce(func.sum(ApiCall.cost_usd), 0.0)).where(ApiCall.at >= since)
    summed = select(func.coalesce(func.sum(ApiCallDay.cost_usd), 0.0)).where(ApiCallDay.day >= since.date())
    if platform is not None:
        query = query.where(ApiCall.platform == platform)
        summed = summed.where(ApiCallDay.platform == platform)
    return float(session.scalar(query) or 0.0) + float(session.scalar(summed) or 0.0)


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
    if budget.monthly_usd <= 0:
        return Stop(f"the month's API budget of ${budget.monthly_usd:.2f} is spent")
    total = spent(session, platform=platform, now=now)
    if total >= budget.monthly_usd:
        return Stop(f"the month's API budget of ${budget.monthly_usd:.2f} is spent")
    used = total / budget.monthly_usd
    if used >= min(budget.optional_until, budget.new_work_until):  # only then do shares matter (a query)
        excess = authors_excess(session, platform, cap_usd=budget.author_share * budget.monthly_usd, now=now)
        used = (total - excess) / budget.monthly_usd
    if need is Need.NEW_WORK and used >= budget.new_work_until:
        return Stop(f"{used:.0%} of the month's API budget spent: taking no new work")
    if need is Need.OPTIONAL and used >= budget.optional_until:
        return Stop(f"{used:.0%} of the month's API budget spent: optional posts are off")
    return Go()


def record_call(
    session: Session, platform: str, endpoint: str, *, status: int | None, cost_usd: float, now: datetime | None = None
) -> None:
    session.add(ApiCall(platform=platform, endpoint=endpoint, status=status, cost_usd=cost_usd, at=now or utcnow()))


def bill_reads(
    session: Session, platform: str, served: Sequence[tuple[str, str | None]], *, unit_usd: float,
    now: datetime | None = None,
) -> int:
    """Bill each of ``served`` (resource ref, author ref) once per UTC day at ``unit_usd``; returns
    how many were billed now (the others were billed earlier that day)."""
    now = now or utcnow()
    day = now.astimezone(timezone.utc).strftime("%Y-%m-%d")
    authors = dict(served)
    if not authors:
        return 0
    known = set(session.scalars(select(BilledRead.resource_ref).where(
        BilledRead.platform == platform, BilledRead.day == day, BilledRead.resource_ref.in_(list(authors)),
    )))
    billed = 0
    for ref, author in authors.items():
        if ref in known:
            continue
        values = dict(platform=platform, resource_ref=ref, day=day, author_ref=author, cost_usd=unit_usd, at=now)
        # Another process may bill the same post at the same moment: the first one's row wins.
        statement = _insert(session, BilledRead).values(**values).on_conflict_do_nothing()
        billed += len(session.execute(statement.returning(BilledRead.resource_ref)).all())
    return billed


def authors_excess(session: Session, platform: str | None, *, cap_usd: float, now: datetime | None = None) -> float:
    """This month's spend on authors' resources beyond ``cap_usd`` each, all authors together."""
    since = month_start(now or utcnow())
    total = func.sum(BilledRead.cost_usd)
    query = select(total).where(BilledRead.at >= since, BilledRead.author_ref.is_not(None))
    if platform is not None:
        query = query.where(BilledRead.platform == platform)
    per_author = query.group_by(BilledRead.platform, BilledRead.author_ref).having(total > cap_usd)
    return float(sum(amount - cap_usd for amount in session.scalars(per_author)))


def author_spent(session: Session, platform: str, author_ref: str, *, now: datetime | None = None) -> float:
    """This month's spend on resources of ``author_ref``."""
    since = month_start(now or utcnow())
    query = select(func.coalesce(func.sum(BilledRead.cost_usd), 0.0)).where(
        BilledRead.platform == platform, BilledRead.author_ref == author_ref, BilledRead.at >= since)
    return float(session.scalar(query) or 0.0)


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
    statement = _insert(session, RateWindow)
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


def _insert(session: Session, table: type[RateWindow] | type[BilledRead]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say ``ON CONFLICT`` (PostgreSQL and SQLite alike)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the ledger is kept on PostgreSQL or SQLite, not {dialect}")


def window(session: Session, platform: str, endpoint: str) -> RateWindow | None:
    """``endpoint``'s window as the platform last reported it."""
    return session.get(RateWindow, (platform, endpoint))


def windows(session: Session) -> list[RateWindow]:
    return list(session.scalars(select(RateWindow).order_by(RateWindow.platform, RateWindow.endpoint)))


def calls_by_day(session: Session, *, since: datetime) -> list[tuple[str, int, float]]:
    """(day, calls, cost) since ``since``, for the admin's chart: the calls kept and the days rolled up."""
    day = func.date(ApiCall.at)
    rows = session.execute(
        select(day, func.count(), func.sum(ApiCall.cost_usd)).where(ApiCall.at >= since).group_by(day).order_by(day)
    )
    days: dict[str, tuple[int, float]] = {str(d): (int(n), float(c or 0.0)) for d, n, c in rows}
    summed = select(ApiCallDay.day, func.sum(ApiCallDay.calls), func.sum(ApiCallDay.cost_usd)).where(
        ApiCallDay.day >= since.date()
    ).group_by(ApiCallDay.day)
    for d, n, c in session.execute(summed):
        calls, cost = days.get(str(d), (0, 0.0))
        days[str(d)] = (calls + int(n), cost + float(c or 0.0))
    return [(d, n, c) for d, (n, c) in sorted(days.items())]


def roll_up(session: Session, *, before: datetime, batch: int = 10_000) -> int:
    """Sum the calls made before ``before`` into one row per platform, endpoint and day
    (``ApiCallDay``), and delete them; returns how many were rolled up.

    Each row is summed by the transaction that deletes it (``DELETE ... RETURNING``): two prunes
    at once never count a row twice.
    """
    rolled = 0
    while ids := session.scalars(select(ApiCall.id).where(ApiCall.at < before).order_by(ApiCall.id).limit(batch)).all():
        gone = session.execute(
            delete(ApiCall).where(ApiCall.id.in_(ids))
            .returning(ApiCall.platform, ApiCall.endpoint, ApiCall.at, ApiCall.cost_usd)
            .execution_options(synchronize_session=False)
        ).all()
        sums: dict[tuple[object, ...], dict[str, object]] = {}
        for platform, endpoint, at, cost in gone:
            day = sums.setdefault((platform, endpoint, at.date()), {"calls": 0, "cost_usd": 0.0})
            day["calls"] = int(day["calls"]) + 1  # type: ignore[call-overload]
            day["cost_usd"] = float(day["cost_usd"]) + float(cost or 0.0)  # type: ignore[arg-type]
        add_to_sums(session, ApiCallDay, sums, ("platform", "endpoint", "day"))
        rolled += len(gone)
        if len(ids) < batch:
            break
    return rolled
