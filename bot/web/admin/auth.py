"""Who may use the admin pages: the Host check, a throttled login, server-side sessions, CSRF.

A login is a row in ``admin_sessions``; the cookie holds only a random token (HttpOnly,
SameSite=Lax, Secure over HTTPS), so logging out or setting a new password ends it for good.
Failed logins are recorded per client address and per account, and each one past a few free
ones doubles the wait before the next guess is even checked (``wait_s``). Every POST carries a
CSRF token: the session's, or before a login the login form's own (a double-submit cookie).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from bot.web import context
from bot.web.admin import passwords
from bot.web.admin.settings import AdminSettings
from storage import admins
from storage.admins import Failures
from storage.db import is_postgres
from storage.models import AdminAccount

log = logging.getLogger(__name__)

COOKIE = "forger_admin"  # the session's token
LOGIN_COOKIE = "forger_admin_login"  # the login form's CSRF token, before there is a session
PATH = "/admin"
CSRF_REFUSED = "missing or wrong CSRF token: reload the page and try again"


class Refusal(Exception):
    """An admin request turned away with ``status`` and a message for the admin.

    ``login``: for want of a login (a page asked for goes to the login form instead);
    ``expired``: that login has just run out.
    """

    def __init__(self, status: int, message: str, *, login: bool = False, expired: bool = False,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.login, self.expired = status, message, login, expired
        self.headers = headers or {}


@dataclass(frozen=True)
class Login:
    """The logged-in admin of this request."""

    account: str
    csrf: str
    token_hash: str


def settings(request: Request) -> AdminSettings:
    found: AdminSettings = request.app.state.admin
    return found


def now(request: Request) -> datetime:
    """The app's clock (tests move it) as an aware UTC datetime."""
    return datetime.fromtimestamp(context(request).clock(), timezone.utc)


def address(request: Request) -> str:
    """The client's address: the proxy's X-Forwarded-For only where the server trusts it."""
    return request.client.host if request.client else "unknown"


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


# -- the session -------------------------------------------------------------------------------------


_UNSEEN = object()


def current(request: Request) -> Login | None:
    """This request's login, if its cookie names a live session (looked up once per request)."""
    seen = getattr(request.state, "admin_login", _UNSEEN)
    if seen is not _UNSEEN:
        return seen  # type: ignore[return-value]
    login: Login | None = None
    expired = False
    token = request.cookies.get(COOKIE)
    if token and len(token) <= 128:
        with context(request).reads.begin() as s:
            row = admins.session_row(s, _token_hash(token))
        if row is not None and row.current and row.expires_at > now(request):
            login = Login(row.account, row.csrf, _token_hash(token))
        elif row is not None:
            expired = True
    request.state.admin_login, request.state.admin_expired = login, expired
    return login


def require_login(request: Request) -> Login:
    """The login, or a Refusal (a page goes to the login form, anything else answers 401)."""
    found = current(request)
    if found is None:
        raise Refusal(401, "log in first", login=True, expired=getattr(request.state, "admin_expired", False))
    return found


def check_csrf(login: Login, given: str) -> None:
    if not _same(given or "", login.csrf):
        raise Refusal(400, CSRF_REFUSED)


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(COOKIE, token, max_age=settings(request).session_lifetime_s, path=PATH, httponly=True,
                        samesite="lax", secure=is_https(request))
    response.delete_cookie(LOGIN_COOKIE, path=PATH + "/login")


def login_token(request: Request) -> tuple[str, bool]:
    """The login form's CSRF token: the one in its cookie, or a new one (True: set its cookie)."""
    token = request.cookies.get(LOGIN_COOKIE, "")
    if 20 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum():
        return token, False
    return secrets.token_urlsafe(32), True


def set_login_cookie(request: Request, response: Response, token: str) -> None:
    # Strict: a cross-site form never carries it, so its POST cannot log anyone in.
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path=PATH + "/login", httponly=True,
                        samesite="strict", secure=is_https(request))


def check_login_csrf(request: Request, given: str) -> None:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not _same(given or "", expected):
        raise Refusal(400, CSRF_REFUSED)


def local(target: str | None, default: str) -> str:
    """``target`` if it is a page of the admin side, else ``default`` (no redirects to other sites)."""
    if not target:
        return default
    parts = urlsplit(target)
    if (parts.scheme or parts.netloc or not target.startswith(PATH + "/") or target.startswith("//")
            or "\\" in target or any(ord(c) < 32 for c in target)):
        return default
    return target


def login_url(request: Request, *, expired: bool = False) -> str:
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    query = {"next": wanted} | ({"expired": "1"} if expired else {})
    return f"{PATH}/login?{urlencode(query, safe='/')}"


# -- guessing, slowed down ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """``free`` failed logins in a row are checked at once; each one after doubles the wait before
    the next is checked, from ``base_s`` up to ``cap_s``."""

    free: int
    base_s: float
    cap_s: float


BY_ADDRESS = Limit(free=3, base_s=5.0, cap_s=3600.0)
# Looser, as every address counts towards it, but it stops guessing spread over many addresses.
BY_ACCOUNT = Limit(free=10, base_s=2.0, cap_s=900.0)
REMEMBERED = timedelta(days=1)  # failures older than this no longer count
KEPT = timedelta(days=30)  # login attempts (with their addresses) older than this are deleted


def wait_s(limit: Limit, failures: Failures, at: datetime) -> float:
    """Seconds to wait before the next guess is checked (0: now)."""
    if failures.count < limit.free or failures.last_at is None:
        return 0.0
    delay = min(limit.cap_s, limit.base_s * 2.0 ** (failures.count - limit.free))
    return max(0.0, (failures.last_at - at).total_seconds() + delay)


# One login is checked at a time in a process (a handful of guesses sent at once would all
# find the same count of failures otherwise); PostgreSQL's row lock does it across processes.
_CHECKING = threading.Lock()


@dataclass(frozen=True)
class Attempt:
    """What a login attempt came to: a new session's token, or how long to wait, or a wrong password."""

    token: str | None = None
    wait_s: float = 0.0
    failures: int = 0  # in a row from that address, this one counted


def _waits(s: Session, who: str, account: str, at: datetime) -> tuple[float, Failures]:
    mine = admins.failures_by_address(s, who, since=at - REMEMBERED)
    everyone = admins.failures_by_account(s, account, since=at - REMEMBERED)
    return max(wait_s(BY_ADDRESS, mine, at), wait_s(BY_ACCOUNT, everyone, at)), mine


def attempt(request: Request, password: str) -> Attempt:
    """Check ``password`` for the admin account from this client, unless it must wait first."""
    web, account, who = context(request), settings(request).account, address(request)
    with _CHECKING:
        at = now(request)
        with web.reads.begin() as s:
            wait, _ = _waits(s, who, account, at)
        if wait > 0:
            log.warning("admin login from %s refused unchecked: %.0f s to wait after failed logins", who, wait)
            return Attempt(wait_s=wait)
        with web.sessions.begin() as s:
            if is_postgres(s):  # one login at a time for the account, across processes
                s.get(AdminAccount, account, with_for_update=True)
            wait, mine = _waits(s, who, account, at)
            if wait > 0:
                return Attempt(wait_s=wait)
            hashed = admins.password_hash(s, account)
            ok = passwords.verify(hashed, password)
            admins.record_login(s, account=account, address=who, ok=ok, now=at)
            if not ok:
                log.warning("ADMIN: failed login to the admin pages from %s (%d in a row from there)",
                            who, mine.count + 1)
                return Attempt(failures=mine.count + 1)
            admins.end_expired(s, now=at)
            admins.forget_logins(s, before=at - KEPT)
            token = secrets.token_urlsafe(32)
            admins.start_session(
                s, token_hash=_token_hash(token), account=account, password_stamp=admins.stamp(hashed or ""),
                csrf=secrets.token_urlsafe(32), address=who, now=at,
                expires_at=at + timedelta(seconds=settings(request).session_lifetime_s),
            )
    log.info("admin logged in from %s", who)
    return Attempt(token=token)


def logout(request: Request, login: Login) -> None:
    with context(request).sessions.begin() as s:
        admins.end_session(s, login.token_hash)


def retry_after(wait: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(wait)))}
