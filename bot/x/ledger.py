"""The X client's accountant: asks ``storage.ledger`` before each call to X and records it after.

The decision and the records live in the database, so every process of the bot (poller,
workers, the dashboard) sees the same windows and the same month's spend. A call the budget or a
spent window forbids is refused before it is sent, with the bot's own X errors, so callers handle
it as they handle X's: a spent window as ``XRateLimited`` (back at its reset), the month's budget
as ``XUsageCapped`` (back next month, and the admin is told).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone

from sqlalchemy.orm import Session, sessionmaker

from bot.x.settings import BudgetSettings
from bot.x.errors import XRateLimited, XUsageCapped
from storage import ledger
from storage.ledger import Budget, Need, Stop, Wait

log = logging.getLogger(__name__)


def _next_month(now: datetime) -> datetime:
    first = ledger.month_start(now)
    return first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)


class Ledger:
    """Budget and rate-limit keeper for one bot, shared by its processes through the database."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: BudgetSettings,
        *,
        platform: str,
        alert: Callable[[str], None],
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.sessions = sessions
        self.platform = platform
        self.prices = settings.prices_usd
        self.budget = Budget(settings.monthly_usd, settings.optional_until, settings.new_work_until,
                             settings.author_share)
        self._alert = alert
        self._clock = clock
        self._said: set[str] = set()  # budget stops already told, so the log is not flooded

    def permit(self, route: str, need: Need) -> None:
        """Return if ``route`` may be called now for a call of ``need``; else raise why not."""
        now = self._clock()
        with self.sessions.begin() as session:
            decision = ledger.decide(session, self.platform, route, need, self.budget, now=now)
        if isinstance(decision, Wait) and decision.capped:
            kind = "read" if route.startswith("GET ") else "write"
            raise XUsageCapped(f"{decision.reason} (told by another process); not asked until "
                               f"{decision.until:%Y-%m-%d %H:%M} UTC", kind=kind, period="current",
                               until=decision.until.timestamp())
        if isinstance(decision, Wait):
            raise XRateLimited(f"{decision.reason}; not asked until {decision.until:%H:%M:%S} UTC",
                               reset_at=decision.until.timestamp())
        if isinstance(decision, Stop):
            if decision.reason not in self._said:
                self._said.add(decision.reason)
                self._alert(decision.reason)
            kind = "read" if route.startswith("GET ") else "write"
            raise XUsageCapped(decision.reason, kind=kind, period="Monthly", until=_next_month(now).timestamp())

    def record(
        self, route: str, *, status: int | None, headers: Mapping[str, str], returned: int,
        served: Sequence[tuple[str, str | None]] = (),
    ) -> None:
        """Keep the call, its estimated cost and the window X reported.

        ``served``: the posts a read returned, (post id, author id). X bills a post once a UTC day
        however often it serves it ("daily deduplication", docs.x.com "Usage and billing"), so a
        post read again that day, in the poll's overlap, costs nothing.
        """
        now = self._clock()
        with self.sessions.begin() as session:
            if served and status is not None and status < 400 and self._billed_per_post(route):
                returned = ledger.bill_reads(session, self.platform, served, unit_usd=self.prices.mention_read, now=now)
            cost = self.cost(route, status, returned)
            ledger.record_call(session, self.platform, route, status=status, cost_usd=cost, now=now)
            try:
                ledger.record_window(
                    session, self.platform, route, limit=int(headers["x-rate-limit-limit"]),
                    remaining=int(headers["x-rate-limit-remaining"]),
                    reset_at=datetime.fromtimestamp(int(headers["x-rate-limit-reset"]), timezone.utc),
                )
            except (KeyError, ValueError):
                pass  # not every answer carries the headers

    def window(self, route: str) -> tuple[int, int, float] | None:
        """``route``'s window as X last reported it to any of the bot's processes: (limit,
        remaining, reset at in epoch seconds); None before X reported one."""
        with self.sessions() as session:
            found = ledger.window(session, self.platform, route)
            return None if found is None else (found.limit, found.remaining, found.reset_at.timestamp())

    def cap(self, route: str, *, until: float) -> None:
        """X said a usage cap is spent: no process of the bot calls ``route`` before ``until``."""
        with self.sessions.begin() as session:
            ledger.record_cap(session, self.platform, route, until=datetime.fromtimestamp(until, timezone.utc))

    def cost(self, route: str, status: int | None, returned: int) -> float:
        """X's pay-per-use price of one call: reads per post returned, writes per request."""
        if status is None or status >= 400:
            return 0.0  # X bills what it serves
        if route == "POST /2/tweets":
            return self.prices.reply  # the bot only ever posts replies
        if route in ("POST /2/media/upload", "POST /2/media/upload/initialize"):
            return self.prices.media_upload
        if self._billed_per_post(route):
            return self.prices.mention_read * returned
        return 0.0

    @staticmethod
    def _billed_per_post(route: str) -> bool:
        return route.startswith("GET /2/tweets") or route.startswith("GET /2/users/:id/")
