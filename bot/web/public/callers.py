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


def identify(request: Request, reads: sessionmaker[Session], keys: KnownKeys | None = None) -> Caller:
    """The caller of ``request``; ``bad_key`` for a key never made or revoked. The key is read
    afresh, and what was read is kept in ``keys`` for the polls that follow."""
    secret = presented_key(request)
    if secret is None:
        return _by_address(request)
    with reads() as session:
        key = api_keys.by_secret(session, secret)
    found = None if key is None or key.revoked_at is not None else Caller(
        user_ref=f"key:{key.id}", name=f"key {key.name}"[:64], key_id=key.id, per_day=key.per_day,
        priority=key.priority)
    if keys is not None:
        keys.keep(secret, found)
    return _checked(found)


def _by_address(request: Request) -> Caller:
    address = request.client.host if request.client else "unknown"
    return Caller(user_ref=f"ip:{address}", name=f"web {address}"[:64])


def _checked(found: Caller | None) -> Caller:
    if found is None:
        raise ApiError("bad_key", "That API key is not valid (unknown, or revoked).")
    return found


class KnownKeys:
    """The API keys read in the last ``ttl_s``, by secret, with their callers (None: unknown or
    revoked), so that a script polling its painting twice a second is not looked up each time.
    Only reads (``recent``) use them: a key revoked in another process may still read for up to
    ``ttl_s``, never submit. At most ``most`` keys are kept."""

    def __init__(self, ttl_s: float = 1.0, most: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.most, self.clock = ttl_s, most, clock
        self._known: dict[str, tuple[float, Caller | None]] = {}
        self._lock = threading.Lock()

    def keep(self, secret: str, caller: Caller | None) -> None:
        now = self.clock()
        with self._lock:
            if len(self._known) >= self.most:
                self._known = {k: v for k, v in self._known.items() if now - v[0] < self.ttl_s}
                if len(self._known) >= self.most:
                    self._known.clear()
            self._known[secret] = (now, caller)

    def recent(self, request: Request) -> Caller | None:
        """The caller of ``request`` as read in the last ``ttl_s`` (``bad_key`` if its key was
        then refused); None if its key must be read."""
        secret = presented_key(request)
        if secret is None:
            return _by_address(request)
        with self._lock:
            found = self._known.get(secret)
        if found is None or self.clock() - found[0] >= self.ttl_s:
            return None
        return _checked(found[1])


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
