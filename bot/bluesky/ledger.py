"""The Bluesky client's accountant: every call kept in ``storage.ledger``, and the PDS's rate-limit
windows (``ratelimit-*`` headers) budgeted there, for all of the bot's processes.

Bluesky bills nothing, so there is no money budget: a call is refused before it is sent only
while its window is spent (as ``BlueskyRateLimited``, back at the window's reset).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone

from sqlalchemy.orm import Session, sessionmaker

from bot.bluesky.errors import BlueskyRateLimited
from storage import ledger
from storage.ledger import Budget, Need, Wait

FREE = Budget(monthly_usd=float("inf"), optional_until=1.0, new_work_until=1.0)


def call_kind(route: str) -> str | None:
    """"read" or "write" (XRPC queries are GETs, procedures POSTs); None for the session's own
    calls (logging in, refreshing), whose windows hold nothing else back."""
    if route.startswith("POST com.atproto.server."):
        return None
    return "read" if route.startswith("GET ") else "write"


class Ledger:
    """Rate-limit keeper for one bot on Bluesky, shared by its processes through the database."""

    def __init__(
        self, sessions: sessionmaker[Session], *, platform: str,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.sessions = sessions
        self.platform = platform
        self._clock = clock

    def permit(self, route: str, need: Need) -> None:
        """Return if ``route`` may be called now; else raise ``BlueskyRateLimited``."""
        with self.sessions.begin() as session:
            decision = ledger.decide(session, self.platform, route, need, FREE, now=self._clock())
        if isinstance(decision, Wait):
            raise BlueskyRateLimited(f"{decision.reason}; not asked until {decision.until:%H:%M:%S} UTC",
                                     reset_at=decision.until.timestamp())

    def record(self, route: str, *, status: int | None, headers: Mapping[str, str]) -> None:
        """Keep the call and the window the PDS reported with it."""
        now = self._clock()
        with self.sessions.begin() as session:
            ledger.record_call(session, self.platform, route, status=status, cost_usd=0.0, now=now)
            try:
                ledger.record_window(
                    session, self.platform, route, limit=int(headers["ratelimit-limit"]),
                    remaining=int(headers["ratelimit-remaining"]),
                    reset_at=datetime.fromtimestamp(int(headers["ratelimit-reset"]), timezone.utc),
                )
            except (KeyError, ValueError):
                pass  # not every answer carries the headers
            if status == 429 and "ratelimit-reset" not in headers:
                # Refused without saying until when: hold this route for a minute.
                ledger.record_window(session, self.platform, route, limit=0, remaining=0,
                                     reset_at=datetime.fromtimestamp(now.timestamp() + 60, timezone.utc))

    def blocked_until(self, kind: str) -> float | None:
        """Until when calls of ``kind`` ("read", "write") are refused: the latest spent window's reset."""
        now = self._clock()
        with self.sessions() as session:
            times = [
                w.reset_at for w in ledger.windows(session)
                if w.platform == self.platform and call_kind(w.endpoint) == kind and w.remaining <= 0
                and _aware(w.reset_at) > now
            ]
        return max((_aware(t).timestamp() for t in times), default=None)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
