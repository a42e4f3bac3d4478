"""Who is calling the web API: the holder of an API key, or an address; and how fast they may call.

A caller is a ``users`` row of platform "web" (user_ref "key:<id>" or "ip:<address>"), so bans,
quotas, priority and the queue limit are the bot's own (``storage.admission``). The address is
the connection's, or X-Forwarded-For's behind a trusted proxy (``web.trust_proxy``: uvicorn's
proxy headers).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from bot.web.public.errors import ApiError
from storage import api_keys

PLATFORM = "web"


@dataclass(frozen=True)
class Caller:
    user_ref: str  # "key:3" or "ip:203.0.113.7"
    name: str  # as the admin pages show it
    key_id: int | None = None
    per_day: int = 0  # a key's quota (an address's is ``web.anonymous_per_day``)
    priority: int = 0  # a key's


def presented_key(request: Request) -> str | None:
    """The API key in ``Authorization: Bearer …`` or ``X-API-Key``, if any."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


def identify(request: Request, reads: sessionmaker[Session]) -> Caller:
    """The caller of ``request``; ``bad_key`` for a key never made or revoked."""
    secret = presented_key(request)
    if secret is None:
        address = request.client.host if request.client else "unknown"
        return Caller(user_ref=f"ip:{address}", name=f"web {address}"[:64])
    with reads() as session:
        key = api_keys.by_secret(session, secret)
    if key is None or key.revoked_at is not None:
        raise ApiError("bad_key", "That API key is not valid (unknown, or revoked).")
    return Caller(user_ref=f"key:{key.id}", name=f"key {key.name}"[:64], key_id=key.id, per_day=key.per_day,
                  priority=key.priority)


class RateLimit:
    """At most ``per_minute`` requests per caller in each minute, counted in this process; 0: no limit."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # caller -> (window start, requests in it)
        self._lock = threading.Lock()

    def check(self, caller: Caller) -> None:
        """Count one request of ``caller``; ``rate_limited`` (with Retry-After) beyond the limit."""
        if self.per_minute <= 0:
            return
        now = self.clock()
        with self._lock:
            if len(self._windows) > 10_000:  # forget callers whose minute is over
                self._windows = {k: v for k, v in self._windows.items() if now - v[0] < 60}
            start, count = self._windows.get(caller.user_ref, (now, 0))
            if now - start >= 60:
                start, count = now, 0
            if count >= self.per_minute:
                raise ApiError("rate_limited", f"Too many requests: at most {self.per_minute} a minute.",
                               retry_after_s=start + 60 - now)
            self._windows[caller.user_ref] = (start, count + 1)
