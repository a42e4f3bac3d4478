"""The admin side of the web app, over HTTP against a real uvicorn server on a loopback port.

Login, sessions, CSRF, throttled guessing, the Host check and proxies; every page and action;
images and placeholders; data of any shape; paging. Tests that take ``sessions`` run on SQLite and
on PostgreSQL. The browser tests drive Debian's Chromium with Playwright.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import FastAPI
from PIL import Image, ImageDraw, ImageOps
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from bot import admin
from bot.config import Config
from bot.web import create_app
from bot.web.admin import AdminSettings
from bot.web.admin import auth as admin_auth
from bot.web.admin.charts import calls_and_spend, nice_ceiling
from bot.web.admin.passwords import WeakPassword, check_policy, hash_password, verify
from bot.web.serve import listen, server
from tests.factories import make_config
from storage import admins, jobs, ledger, posts, schema, users
from storage.db import open_engine, session_factory
from storage.models import Job, JobState, Outcome, utcnow

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
HASHED = hash_password(PASSWORD)  # made once: each costs scrypt's 50 ms
LIFETIME_S = 3600
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/admin-shots")
Sessions = sessionmaker[Session]


# -- a small bot's worth of jobs -------------------------------------------------------------------


def picture(low: str, high: str, *, size: tuple[int, int] = (320, 240), mark: str = "circle") -> bytes:
    """A real PNG: a two-colour gradient with a shape on it (something to see in a thumbnail)."""
    gradient = Image.linear_gradient("L").rotate(35, expand=False).resize(size)
    image = ImageOps.colorize(gradient, low, high)
    draw = ImageDraw.Draw(image)
    w, h = size
    if mark == "circle":
        draw.ellipse((w * 0.3, h * 0.25, w * 0.7, h * 0.8), fill="#fff3bf", outline="#343a40", width=5)
    else:
        for n in range(0, w, 24):
            draw.arc((n - 36, h * 0.2, n + 36, h * 0.8), 0, 180, fill="#ffd43b", width=5)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


PHOTO = picture("#1c7ed6", "#a5d8ff")
PAINTING = picture("#0b1d51", "#4263eb", mark="swirls")
RESULT = picture("#1b3a8c", "#f59f00")


@dataclass(frozen=True)
class Seeded:
    failed: int  # alice's, failed with an error
    replied: int  # bob's, with a result
    rendering: int  # carol's, 40% painted
    queued: int  # dave's, first in line
    queued_too: int  # alice's second, behind it


def _request(session: Session, post_ref: str, author: str) -> int:
    user = users.seen(session, "x", f"id-{author}", author)
    posts.record(session, platform="x", post_ref=post_ref, author_ref=f"id-{author}", author_username=author,
                 text="@forgerbot paint this like the painting", outcome=Outcome.QUEUED)
    session.flush()
    job = jobs.enqueue(session, platform="x", post_ref=post_ref, user_id=user.id, author_username=author,
                       content_image=PHOTO, style_image=PAINTING)
    return job.id


def _claim(session: Session) -> int:
    claimed = jobs.claim_next(session, worker="worker-1", lease_s=600, max_attempts=3)
    assert claimed is not None
    return claimed.id


def seed(sessions: Sessions) -> Seeded:
    """Jobs in each interesting state, made by the storage functions the bot itself uses."""
    with sessions.begin() as s:
        failed = _request(s, "1001", "alice")
        assert _claim(s) == failed
        jobs.mark_failed(s, failed, worker="worker-1", error="the renderer ran out of memory")
    with sessions.begin() as s:
        replied = _request(s, "1002", "bob")
        assert _claim(s) == replied
        jobs.mark_painted(s, replied, worker="worker-1", result_image=RESULT, render_s=84.0)
        jobs.mark_posted(s, replied, reply_ref="9002")
    with sessions.begin() as s:
        rendering = _request(s, "1003", "carol")
        assert _claim(s) == rendering
        jobs.heartbeat(s, rendering, worker="worker-1", lease_s=600, iteration=120, total=300)
    with sessions.begin() as s:
        queued, queued_too = _request(s, "1004", "dave"), _request(s, "1005", "alice")
        now = utcnow()
        ledger.record_call(s, "x", "GET /2/users/:id/mentions", status=200, cost_usd=0.05, now=now)
        ledger.record_call(s, "x", "POST /2/tweets", status=201, cost_usd=0.015, now=now)
        ledger.record_window(s, "x", "GET /2/users/:id/mentions", limit=300, remaining=287,
                             reset_at=now + timedelta(minutes=15))
        # A window X reported used up, whose reset has passed since: it is whole again.
        ledger.record_window(s, "x", "POST /2/tweets", limit=100, remaining=0, reset_at=now - timedelta(hours=3))
    return Seeded(failed, replied, rendering, queued, queued_too)


def state_of(sessions: Sessions, job_id: int) -> str:
    with sessions.begin() as s:
        return admin.job(s, job_id).row.state



# -- the app on a real server ------------------------------------------------------------------------


class Clock:
    """Epoch seconds that move only when a test moves them: sessions expire and waits pass at once."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@contextmanager
def serving(app: FastAPI, *, proxy_headers: bool = False) -> Iterator[str]:
    """``app`` on uvicorn in a thread, on a free loopback port; yields its base URL."""
    listening = listen("127.0.0.1", 0)
    uvicorn_server = server(app, proxy_headers=proxy_headers)
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not uvicorn_server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"
    finally:
        uvicorn_server.should_exit = True
        thread.join(10)
        listening.close()


def config(*, behind_proxy: bool = False, **admin_keys: Any) -> Config:
    """The test configuration with an admin section (``behind_proxy``: the web app trusts the
    proxy's forwarded headers)."""
    section: dict[str, Any] = {"allowed_hosts": ["127.0.0.1", "localhost", "::1"],
                               "session_lifetime_s": LIFETIME_S} | admin_keys
    section = {k: list(v) if isinstance(v, tuple) else v for k, v in section.items()}
    return make_config(admin=section, web={"trust_proxy": behind_proxy})


def set_password(sessions: Sessions, hashed: str = HASHED) -> None:
    with sessions.begin() as s:
        admins.set_password_hash(s, "admin", hashed, now=utcnow())


def make_app(engine: Engine, sessions: Sessions, clock: Clock, **admin_keys: Any) -> FastAPI:
    settings = config(**admin_keys)
    return create_app(settings, sessions, reads=session_factory(engine, read_only=True), clock=clock,
                      admin=AdminSettings.from_config(settings))


class Client:
    """A browser's worth of HTTP: one cookie jar, redirects not followed unless asked."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(self.base + path, allow_redirects=kw.pop("follow", False), timeout=30, **kw)

    def head(self, path: str, **kw: Any) -> requests.Response:
        return self.http.head(self.base + path, timeout=30, **kw)

    def post(self, path: str, data: dict[str, str] | None = None, **kw: Any) -> requests.Response:
        return self.http.post(self.base + path, data=data, allow_redirects=kw.pop("follow", False), timeout=30, **kw)

    def cookie(self, name: str) -> str | None:
        return self.http.cookies.get(name)

    def log_in(self, password: str = PASSWORD) -> str:
        """Log in through the form; returns the session's CSRF token."""
        token = csrf_of(self.get("/admin/login").text)
        response = self.post("/admin/login", {"csrf": token, "password": password})
        assert response.status_code == 303 and response.headers["Location"] == "/admin/", response.text[:300]
        return csrf_of(self.get("/admin/").text)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


@dataclass
class Served:
    base: str
    app: FastAPI
    sessions: Sessions
    clock: Clock

    def client(self) -> Client:
        return Client(self.base)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def served(engine: Engine, sessions: Sessions, clock: Clock) -> Iterator[Served]:
    set_password(sessions)
    app = make_app(engine, sessions, clock)
    with serving(app) as base:
        yield Served(base, app, sessions, clock)


@pytest.fixture
def seeded(sessions: Sessions) -> Seeded:
    return seed(sessions)


@pytest.fixture
def client(served: Served) -> Client:
    return served.client()


# -- refused without a login -------------------------------------------------------------------------


def _routes(ids: Seeded, bob: int) -> tuple[list[str], list[str], list[tuple[str, dict[str, str]]]]:
    pages = ["/admin/", "/admin/?state=failed&user=alice", "/admin/failures", "/admin/users", "/admin/budget",
             "/admin/logins", f"/admin/jobs/{ids.failed}"]
    data = [f"/admin/jobs/{ids.replied}/image/{role}" for role in ("content", "style", "result")]
    data += [f"/admin/jobs/{ids.replied}/image/result?size=160", "/admin/api/queue"]
    actions = [
        (f"/admin/jobs/{ids.failed}/retry", {}), (f"/admin/jobs/{ids.queued}/cancel", {}),
        (f"/admin/users/{bob}/ban", {"reason": "spam"}), (f"/admin/users/{bob}/unban", {}),
        (f"/admin/users/{bob}/priority", {"priority": "9"}), ("/admin/logout", {}),
    ]
    return pages, data, actions


def _user_id(sessions: Sessions, name: str) -> int:
    with sessions.begin() as s:
        return admin.user(s, name).id


def _served_paths(app: FastAPI) -> set[str]:
    """Every path the app serves (through FastAPI's included routers, with their prefixes)."""
    found = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner.routes, route.include_context.prefix or prefix)
            else:
                found.add(re.sub(r"\{[^}]+\}", "0", prefix + route.path))

    walk(app.router.routes, "")
    return {p for p in found if p.startswith("/admin")}


def test_every_route_is_refused_without_a_login(served: Served, client: Client, seeded: Seeded) -> None:
    bob = _user_id(served.sessions, "bob")
    pages, data, actions = _routes(seeded, bob)
    # Every route the admin side has is in the lists above (a new route must be added to them).
    tried = {re.sub(r"\d+", "0", p.split("?")[0]) for p in pages + data + [a for a, _ in actions]}
    public = {"/admin/login", "/admin/static/forger.css", "/admin/favicon.svg"}
    assert _served_paths(served.app) - public == {re.sub(r"/(content|style|result)$", "/0", t) for t in tried}

    assert client.get("/admin/favicon.svg").headers["Content-Type"] == "image/svg+xml"  # public: it tells nothing
    for page in pages:
        response = client.get(page)
        assert response.status_code == 303, page
        assert response.headers["Location"].startswith("/admin/login?next=/admin/"), page
    for url in data:
        response = client.get(url)
        assert (response.status_code, response.json()) == (401, {"error": "log in first"}), url
        assert not response.headers["Content-Type"].startswith("image/")
    # Even carrying a valid CSRF token (the login form hands one out), actions need a login.
    token = csrf_of(client.get("/admin/login").text)
    for url, form in actions:
        assert client.post(url, {"csrf": token, **form}).status_code == 401, url
    with served.sessions.begin() as s:
        assert admin.job(s, seeded.failed).row.state == "failed"
        assert admin.job(s, seeded.queued).row.state == "queued"
        found = admin.user(s, bob)
        assert (found.banned, found.priority) == (False, 0)


def test_a_made_up_or_stolen_looking_cookie_is_no_login(served: Served, client: Client) -> None:
    client.log_in()
    real = client.cookie(admin_auth.COOKIE)
    assert real is not None
    for forged in (real[:-1] + ("A" if real[-1] != "A" else "B"), "x" * 43, "", "x" * 5000):
        stranger = served.client()
        stranger.http.cookies.set(admin_auth.COOKIE, forged, path="/admin")
        assert stranger.get("/admin/").status_code == 303, forged[:10]
        assert stranger.get("/admin/api/queue").status_code == 401


def test_a_wrong_password_logs_nobody_in(client: Client) -> None:
    token = csrf_of(client.get("/admin/login").text)
    response = client.post("/admin/login", {"csrf": token, "password": "guess"})
    assert response.status_code == 401 and "Wrong password." in response.text
    assert client.get("/admin/").status_code == 303
    assert client.cookie(admin_auth.COOKIE) is None


def test_login_cookie_and_headers(client: Client) -> None:
    token = csrf_of(client.get("/admin/login").text)
    response = client.post("/admin/login", {"csrf": token, "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/admin" in cookie
    assert f"Max-Age={LIFETIME_S}" in cookie and "Secure" not in cookie  # plain HTTP, no proxy trusted
    assert "Strict-Transport-Security" not in response.headers
    page = client.get("/admin/")
    policy = page.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce and f'<script nonce="{nonce.group(1)}">' in page.text
    assert "frame-ancestors 'none'" in policy and page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store"
    assert client.get("/admin/login").headers["Location"] == "/admin/"  # already logged in


def test_login_goes_back_where_it_was_asked_but_never_off_site(client: Client) -> None:
    assert client.get("/admin/users").headers["Location"] == "/admin/login?next=/admin/users"
    for target, lands in (("/admin/users", "/admin/users"), ("//evil.example/", "/admin/"),
                          ("https://evil.example/", "/admin/"), ("/admin/\\evil.example", "/admin/"),
                          ("/elsewhere", "/admin/")):
        response = client.post("/admin/login", {
            "csrf": csrf_of(client.get("/admin/login").text), "password": PASSWORD, "next": target,
        })
        assert response.headers["Location"] == lands, target
        client.post("/admin/logout", {"csrf": csrf_of(client.get("/admin/").text)})


def test_logout_ends_the_session_even_for_a_copy_of_its_cookie(served: Served, client: Client) -> None:
    token = client.log_in()
    cookie = client.cookie(admin_auth.COOKIE)
    response = client.post("/admin/logout", {"csrf": token}, follow=True)
    assert "Logged out." in response.text
    assert client.get("/admin/").status_code == 303
    replayed = served.client()
    replayed.http.cookies.set(admin_auth.COOKIE, cookie or "", path="/admin")
    assert replayed.get("/admin/").status_code == 303
    assert replayed.get("/admin/api/queue").status_code == 401


def test_a_new_password_ends_every_session(served: Served, client: Client) -> None:
    client.log_in()
    set_password(served.sessions, hash_password("a brand new passphrase here"))
    assert client.get("/admin/api/queue").status_code == 401
    assert client.get("/admin/").status_code == 303
    # Even a session row that survived (a stamp of the old hash) is no login.
    set_password(served.sessions)
    assert client.get("/admin/api/queue").status_code == 401
    client.log_in()
    assert client.get("/admin/api/queue").status_code == 200


def test_the_password_is_kept_only_as_a_hash(served: Served, client: Client, engine: Engine) -> None:
    client.log_in()
    with engine.connect() as c:
        dumped = repr([list(map(tuple, c.exec_driver_sql(f"SELECT * FROM {t}")))
                       for t in ("admin_accounts", "admin_sessions", "admin_logins")])
    assert PASSWORD not in dumped and PASSWORD.encode().hex() not in dumped
    assert (client.cookie(admin_auth.COOKIE) or "?") not in dumped  # only the token's hash
    assert verify(HASHED, PASSWORD) and not verify(HASHED, PASSWORD + " ") and not verify(None, PASSWORD)
    assert not verify("scrypt$garbage", PASSWORD)


def test_the_password_policy() -> None:
    for weak in ("a", " ", "short12", "passwordpassword", "password1234", "iloveyou!!!!2024", "qwertyuiopasdf",
                 "111111111111", "123456789012", "Password12345!"):
        with pytest.raises(WeakPassword):
            check_policy(weak)
    check_policy(PASSWORD)
    check_policy("my cat eats tulips at dawn")


def test_password_checks_take_the_same_time_whatever_the_guess() -> None:
    # Interleaved, and the fastest of each kept: other work on the machine only ever adds time.
    cases = {"right": (HASHED, PASSWORD), "wrong": (HASHED, "x"), "long": (HASHED, "x" * 4000),
             "empty": (HASHED, ""), "nothing stored": (None, "x")}
    fastest = dict.fromkeys(cases, float("inf"))
    for _ in range(7):
        for name, (stored, guess) in cases.items():
            started = time.perf_counter()
            verify(stored, guess)
            fastest[name] = min(fastest[name], time.perf_counter() - started)
    for name, seconds in fastest.items():
        assert 0.5 < seconds / fastest["right"] < 2.0, fastest


# -- CSRF and expiry --------------------------------------------------------------------------------------


def test_posts_without_the_right_csrf_token_are_rejected(served: Served, client: Client, seeded: Seeded) -> None:
    token = client.log_in()
    retry = f"/admin/jobs/{seeded.failed}/retry"
    other = served.client()
    other_token = other.log_in()
    login_form_token = csrf_of(served.client().get("/admin/login").text)
    bob = _user_id(served.sessions, "bob")
    variants: list[dict[str, Any]] = [
        {"data": {}}, {"data": {"csrf": ""}}, {"data": {"csrf": "forged"}}, {"data": {"csrf": token[:-1]}},
        {"data": {"csrf": token + "x"}}, {"data": {"csrf": other_token}},  # another admin's session's
        {"data": {"csrf": login_form_token}},  # the login form's
        {"data": {"csrf": token.upper()}},
    ]
    for variant in variants:
        response = client.post(retry, **variant)
        assert response.status_code == 400 and "CSRF" in response.text, variant
    # In the query string instead of the form, as JSON, or as a GET: still no action.
    assert client.post(f"{retry}?csrf={token}").status_code == 400
    assert client.http.post(client.base + retry, json={"csrf": token}, allow_redirects=False).status_code == 400
    assert client.get(f"{retry}?csrf={token}").status_code == 405
    assert client.post(f"/admin/users/{bob}/ban", {"reason": "x"}).status_code == 400
    # A cross-site page's form: the browser sends no SameSite=Lax cookie with it, so no login.
    assert served.client().post(retry, {"csrf": token}).status_code == 401
    assert state_of(served.sessions, seeded.failed) == "failed"
    with served.sessions.begin() as s:
        assert not admin.user(s, bob).banned
    assert client.post(retry, {"csrf": token}).status_code == 303
    assert state_of(served.sessions, seeded.failed) == "queued"


def test_the_login_form_needs_its_own_token(client: Client) -> None:
    assert client.post("/admin/login", {"password": PASSWORD}).status_code == 400
    token = csrf_of(client.get("/admin/login").text)
    stranger = Client(client.base)  # a cross-site form: it has no cookie of ours
    assert stranger.post("/admin/login", {"csrf": token, "password": PASSWORD}).status_code == 400
    assert client.post("/admin/login", {"csrf": token[:-1], "password": PASSWORD}).status_code == 400
    assert client.get("/admin/").status_code == 303


def test_a_large_post_is_refused_unread(client: Client, seeded: Seeded) -> None:
    token = client.log_in()
    response = client.post(f"/admin/jobs/{seeded.failed}/retry", {"csrf": token, "pad": "x" * 70_000})
    assert response.status_code == 413


def test_a_login_expires_after_its_lifetime_however_busy(client: Client, clock: Clock, seeded: Seeded) -> None:
    token = client.log_in()
    clock.now += LIFETIME_S - 1
    assert client.get("/admin/").status_code == 200
    clock.now += 1
    response = client.get("/admin/")
    assert response.status_code == 303 and response.headers["Location"].startswith("/admin/login?")
    assert "Your session expired" in client.get(response.headers["Location"]).text
    assert client.get(f"/admin/jobs/{seeded.failed}/image/content").status_code == 401
    assert client.post(f"/admin/jobs/{seeded.failed}/retry", {"csrf": token}).status_code == 401


# -- guessing -------------------------------------------------------------------------------------------------


def _guess(client: Client, password: str, **headers: str) -> requests.Response:
    token = client.cookie(admin_auth.LOGIN_COOKIE) or csrf_of(client.get("/admin/login", headers=headers).text)
    return client.post("/admin/login", {"csrf": token, "password": password}, headers=headers)


def test_guessing_from_one_address_gets_a_few_tries_a_minute(served: Served, client: Client, clock: Clock) -> None:
    checked, begin = [], clock.now
    # A guess every second for a minute, then every ten seconds for nine more.
    for second in list(range(60)) + list(range(60, 600, 10)):
        clock.now = begin + second
        response = _guess(client, f"guess number {second}")
        assert response.status_code in (401, 429), response.text[:200]
        if response.status_code == 401:
            checked.append(second)
        else:
            assert int(response.headers["Retry-After"]) >= 1 and "Too many failed logins" in response.text
    clock.now = begin + 600
    assert len([s for s in checked if s < 60]) <= 6, checked  # a few in the first minute
    assert len(checked) <= 10, checked  # and fewer after: the waits double
    # The right password is not even checked while the wait lasts...
    assert _guess(client, PASSWORD).status_code == 429
    assert client.get("/admin/").status_code == 303
    # ...and works once it has passed; a success starts the count again.
    clock.now += 3600
    assert _guess(client, PASSWORD).status_code == 303
    assert client.get("/admin/").status_code == 200


def test_guessing_from_many_addresses_is_slowed_per_account(engine: Engine, sessions: Sessions, clock: Clock) -> None:
    set_password(sessions)
    app = make_app(engine, sessions, clock, behind_proxy=True)
    with serving(app, proxy_headers=True) as base:
        client = Client(base)
        statuses = []
        for n in range(40):
            statuses.append(_guess(client, "wrong", **{"X-Forwarded-For": f"203.0.113.{n}"}).status_code)
            clock.now += 1
        assert statuses.count(401) <= 14 and statuses.count(429) >= 25, statuses
        assert _guess(client, PASSWORD, **{"X-Forwarded-For": "203.0.113.250"}).status_code == 429
        # Each address was new: what stopped them is the account's own count.
        with sessions.begin() as s:
            failed = admins.failed_logins(s, since=utcnow() - timedelta(days=2))
        assert len(failed) == statuses.count(401) and {f.count for f in failed} == {1}


def test_each_failed_login_is_logged_and_shown(served: Served, client: Client,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.web.admin.auth"):
        for n in range(3):
            assert _guess(client, f"wrong {n}").status_code == 401
    failures = [r.getMessage() for r in caplog.records if "failed login" in r.getMessage()]
    assert len(failures) == 3 and "from 127.0.0.1" in failures[-1] and "3 in a row" in failures[-1]
    served.clock.now += 3600
    client.log_in()
    queue = client.get("/admin/").text
    assert "3 failed logins in the last 24 hours" in queue
    page = client.get("/admin/logins").text
    assert re.search(r"<code>127\.0\.0\.1</code></td><td class=\"num\">3</td>", page)
    assert page.count("wrong password") == 3 and "logged in" in page


def test_login_attempts_are_forgotten_after_a_month(served: Served, client: Client) -> None:
    assert _guess(client, "wrong").status_code == 401
    served.clock.now += 31 * 86400
    client.log_in()
    with served.sessions.begin() as s:
        assert [a.ok for a in admins.recent_logins(s)] == [True]


def test_the_public_side_works_with_the_admin_side_off(engine: Engine, sessions: Sessions, clock: Clock) -> None:
    set_password(sessions)
    app = create_app(config(), sessions, clock=clock)
    assert _served_paths(app) == set()
    with serving(app) as base:
        client = Client(base)
        assert client.get("/admin/login").status_code == 404
        assert client.get("/api/v1/openapi.json").status_code == 200


def test_head_of_the_login_form_checks_no_password(served: Served, client: Client) -> None:
    for _ in range(10):
        response = client.head("/admin/login")
        assert response.status_code == 200 and response.text == ""
    with served.sessions.begin() as s:
        assert admins.recent_logins(s) == []
    client.log_in()  # not slowed down by any of it


# -- behind a proxy, and the Host header ----------------------------------------------------------------------


def test_behind_a_trusted_proxy_the_cookie_is_secure_and_hsts_is_sent(engine: Engine, sessions: Sessions,
                                                                      clock: Clock) -> None:
    set_password(sessions)
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
    for trusted in (True, False):
        app = make_app(engine, sessions, clock, behind_proxy=trusted)
        with serving(app, proxy_headers=trusted) as base:
            client = Client(base)
            form = client.get("/admin/login", headers=https)
            token = csrf_of(form.text)
            client.http.cookies.set(admin_auth.LOGIN_COOKIE, token, path="/admin/login")  # requests keeps Secure ones back
            response = client.post("/admin/login", {"csrf": token, "password": PASSWORD}, headers=https)
            assert response.status_code == 303
            cookie = response.headers["Set-Cookie"]
            assert ("Secure" in cookie) is trusted and ("Secure" in form.headers["Set-Cookie"]) is trusted
            assert ("Strict-Transport-Security" in response.headers) is trusted
            with sessions.begin() as s:
                last = admins.recent_logins(s, limit=1)[0]
            assert last.address == ("198.51.100.7" if trusted else "127.0.0.1")


def test_the_host_header_must_be_an_allowed_one(engine: Engine, sessions: Sessions, clock: Clock) -> None:
    set_password(sessions)
    app = make_app(engine, sessions, clock, allowed_hosts=("127.0.0.1", "localhost", "::1", "forger.example.org"))
    with serving(app) as base:
        client = Client(base)
        port = base.rsplit(":", 1)[1]
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "forger.example.org.evil",
                     "", "[::2]"):
            response = client.get("/admin/login", headers={"Host": host})
            assert response.status_code == 400 and "host" in response.text, host
            assert client.post("/admin/login", {"password": PASSWORD}, headers={"Host": host}).status_code == 400
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "forger.example.org",
                     "FORGER.example.org:443"):
            assert client.get("/admin/login", headers={"Host": host}).status_code == 200, host


def test_allowed_hosts_matching() -> None:
    settings = AdminSettings(allowed_hosts=("127.0.0.1", "::1", ".example.com"))
    assert settings.allows_host("127.0.0.1:8000") and settings.allows_host("[::1]:80")
    assert settings.allows_host("a.example.com") and settings.allows_host("example.com.") is False
    assert not settings.allows_host("example.com.evil") and not settings.allows_host("[::1")


# -- what an admin sees -------------------------------------------------------------------------------------


def test_the_queue_page_shows_jobs_thumbnails_progress_and_eta(client: Client, seeded: Seeded) -> None:
    client.log_in()
    html = client.get("/admin/").text
    for job_id in (seeded.failed, seeded.replied, seeded.rendering, seeded.queued):
        assert f'id="job-{job_id}"' in html
        assert f'src="/admin/jobs/{job_id}/image/content?size=160"' in html
    assert f'src="/admin/jobs/{seeded.replied}/image/result?size=160"' in html
    assert f'src="/admin/jobs/{seeded.queued}/image/result' not in html  # nothing painted yet
    assert '<progress max="1" value="0.400">' in html
    filtered = client.get("/admin/?state=queued&user=alice").text
    assert f'id="job-{seeded.queued_too}"' in filtered and f'id="job-{seeded.queued}"' not in filtered
    assert "unknown state" in client.get("/admin/?state=bogus").text


def test_the_queue_as_json_for_the_live_bars(client: Client, seeded: Seeded) -> None:
    client.log_in()
    rows = {r["id"]: r for r in client.get("/admin/api/queue").json()["rows"]}
    assert rows[seeded.rendering]["progress"] == pytest.approx(0.4)
    # One render measured (84 s): the rendering job has 60% of one to go; dave is next, alice after.
    assert rows[seeded.rendering]["eta_s"] == pytest.approx(84 * 0.6)
    assert (rows[seeded.queued]["position"], rows[seeded.queued]["eta_s"]) == (1, pytest.approx(84))
    assert rows[seeded.queued_too]["eta_s"] == pytest.approx(168)
    only = client.get("/admin/api/queue?state=failed").json()["rows"]
    assert [r["id"] for r in only] == [seeded.failed]
    wrong = client.get("/admin/api/queue?state=bogus")
    assert wrong.status_code == 400 and "unknown state" in wrong.json()["error"]


def test_a_job_page_has_its_history_timings_images_and_buttons(client: Client, seeded: Seeded) -> None:
    client.log_in()
    html = client.get(f"/admin/jobs/{seeded.failed}").text
    assert "the renderer ran out of memory" in html and "claimed by worker-1" in html
    assert f'action="/admin/jobs/{seeded.failed}/retry"' in html and "/cancel" not in html
    done = client.get(f"/admin/jobs/{seeded.replied}").text
    for role in ("content", "style", "result"):
        assert f'src="/admin/jobs/{seeded.replied}/image/{role}?size=480"' in done
    assert "9002" in done and "1m 24s" in done  # the reply's post, the render time
    waiting = client.get(f"/admin/jobs/{seeded.queued}").text
    assert f'action="/admin/jobs/{seeded.queued}/cancel"' in waiting and "not painted yet" in waiting
    for missing in ("999999", "99999999999999999999"):
        response = client.get(f"/admin/jobs/{missing}")
        assert response.status_code == 404 and f"no job {missing}" in response.text
    assert client.get("/admin/jobs/abc").status_code == 404


def test_the_failures_users_and_budget_pages(served: Served, client: Client, seeded: Seeded) -> None:
    with served.sessions.begin() as s:
        now = utcnow()
        ledger.record_call(s, "memory", "reply", status=200, cost_usd=0.25, now=now)
        ledger.record_window(s, "memory", "mentions", limit=10, remaining=4, reset_at=now + timedelta(minutes=5))
    client.log_in()
    failures = client.get("/admin/failures").text
    assert f'id="job-{seeded.failed}"' in failures and f'id="job-{seeded.queued}"' not in failures
    assert "the renderer ran out of memory" in failures
    people = client.get("/admin/users").text
    for name in ("alice", "bob", "carol", "dave"):
        assert f'id="user-{_user_id(served.sessions, name)}"' in people and f">{name}</bdi>" in people
    assert re.search(r'id="user-%d".*?2 / 5' % _user_id(served.sessions, "alice"), people, re.S)
    money = client.get("/admin/budget").text
    assert "$0.32" in money and "of $50.00" in money and "3 calls" in money
    assert "<svg" in money and money.count('<rect class="bar"') == 30
    # Each platform has its own row: calls and spend, and its windows.
    assert re.search(r'id="platform-x"><td>x</td><td class="num">2</td><td class="num">\$0.07', money)
    assert re.search(r'id="platform-memory"><td>memory</td><td class="num">1</td><td class="num">\$0.25', money)
    assert re.search(r"<td>memory</td>\s*<td><code>mentions</code></td>\s*<td class=\"num\">4 / 10", money)
    assert "GET /2/users/:id/mentions" in money and "287 / 300" in money
    assert re.search(r"POST /2/tweets.*?100 / 100.*?reset", money, re.DOTALL)


# -- what an admin does -------------------------------------------------------------------------------------


def test_actions_change_the_database_and_say_so(served: Served, client: Client, seeded: Seeded) -> None:
    token = client.log_in()
    sessions = served.sessions
    bob, carol = _user_id(sessions, "bob"), _user_id(sessions, "carol")

    def post(url: str, **form: str) -> str:
        response = client.post(url, {"csrf": token, **form}, follow=True)
        assert response.status_code == 200 and "Traceback" not in response.text
        return response.text

    assert "is queued again" in post(f"/admin/jobs/{seeded.failed}/retry")
    assert state_of(sessions, seeded.failed) == "queued"
    cancelled = client.post(f"/admin/jobs/{seeded.queued}/cancel", {"csrf": token, "next": "/admin/failures"})
    assert cancelled.headers["Location"] == "/admin/failures"
    assert "is cancelled" in client.get("/admin/failures").text
    assert "is cancelled" not in client.get("/admin/failures").text  # shown once
    assert state_of(sessions, seeded.queued) == "cancelled"
    assert "@bob is banned (spams)" in post(f"/admin/users/{bob}/ban", reason="spams")
    assert "now has priority 7" in post(f"/admin/users/{carol}/priority", priority="7")
    with sessions.begin() as s:
        found_bob, found_carol = admin.user(s, bob), admin.user(s, carol)
        assert (found_bob.banned, found_bob.ban_reason, found_carol.priority) == (True, "spams", 7)
    assert "no longer banned" in post(f"/admin/users/{bob}/unban")
    with sessions.begin() as s:
        assert not admin.user(s, bob).banned
    # What cannot be done is said, not thrown.
    assert "only failed jobs can be retried" in post(f"/admin/jobs/{seeded.queued_too}/retry")
    assert "can no longer be cancelled" in post(f"/admin/jobs/{seeded.replied}/cancel")
    assert "no user 999999" in post("/admin/users/999999/ban")
    assert "from 0 to 100" in post(f"/admin/users/{carol}/priority", priority="high")
    assert "from 0 to 100" in post(f"/admin/users/{carol}/priority", priority="²")
    assert state_of(sessions, seeded.queued_too) == JobState.QUEUED.value


def test_a_flash_message_cannot_be_forged(client: Client) -> None:
    client.log_in()
    client.http.cookies.set("forger_admin_flash", "WyJvayIsICJHbyB0byBldmlsLmV4YW1wbGUiXQ==.00", path="/admin")
    assert "evil.example" not in client.get("/admin/").text


def test_users_are_acted_on_by_id_whatever_their_name(served: Served, client: Client) -> None:
    names = ["a/b", "../../admin/logout", "x?y=1#z", "@percent%2F"]
    with served.sessions.begin() as s:
        ids = [users.seen(s, "x", f"odd-{n}", name).id for n, name in enumerate(names)]
    token = client.log_in()
    for user_id, name in zip(ids, names):
        response = client.post(f"/admin/users/{user_id}/ban", {"csrf": token, "reason": "odd"}, follow=True)
        assert "is banned (odd)" in response.text and response.url.endswith("/admin/users")
        client.post(f"/admin/users/{user_id}/priority", {"csrf": token, "priority": "3"})
        with served.sessions.begin() as s:
            found = admin.user(s, user_id)
        assert (found.username, found.banned, found.priority) == (name, True, 3)


# -- data of any shape ----------------------------------------------------------------------------------------


RLO = "\u202e"
HOSTILE_NAME = "evil" + RLO + "gnp.exe" + "_" * 52  # a right-to-left override, 64 characters (the column's most)
HUGE_ERROR = "Traceback: " + "x" * 5000


def _odd_job(sessions: Sessions, post_ref: str, author: str, *, options: object = None, photo: bytes = PHOTO,
             text: str = "@forgerbot paint", error: str | None = None) -> int:
    with sessions.begin() as s:
        user = users.seen(s, "x", f"id-{post_ref}", author)
        posts.record(s, platform="x", post_ref=post_ref, author_ref=f"id-{post_ref}", author_username=author[:64],
                     text=text, outcome=Outcome.QUEUED)
        s.flush()
        job = jobs.enqueue(s, platform="x", post_ref=post_ref, user_id=user.id, author_username=author[:64],
                           content_image=photo, style_image=PAINTING)
        if options is not None:
            job.options = options  # type: ignore[assignment]  # as an older or damaged version stored it
        if error is not None:
            job.state, job.error = JobState.FAILED, error
        return job.id


def _huge_png() -> bytes:
    """A real PNG over Pillow's pixel limit (about 100 megapixels, tiny on disk)."""
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, "PNG")
    return out.getvalue()


def test_a_job_with_options_no_version_knows_still_shows(served: Served, client: Client) -> None:
    odd = _odd_job(served.sessions, "7001", "mallory", options={"strength": "extreme<script>alert(1)</script>"})
    worse = _odd_job(served.sessions, "7002", "mallory", options=["not", "a", "mapping"])  # type: ignore[arg-type]
    client.log_in()
    page = client.get(f"/admin/jobs/{odd}")
    assert page.status_code == 200 and "as stored: not ones this version knows" in page.text
    assert "extreme&lt;script&gt;" in page.text and "<script>alert" not in page.text
    assert client.get(f"/admin/jobs/{worse}").status_code == 200


def test_a_photo_over_the_pixel_limit_shows_a_placeholder_that_says_why(served: Served, client: Client) -> None:
    huge = _odd_job(served.sessions, "7003", "mallory", photo=_huge_png())
    client.log_in()
    for url in (f"/admin/jobs/{huge}/image/content?size=160", f"/admin/jobs/{huge}/image/content"):
        response = client.get(url)
        assert response.status_code == 200 and response.headers["Content-Type"] == "image/svg+xml", url
        assert "too large to show" in response.text and "100000000" in response.text.replace(",", "")
        assert f"forger job-image {huge} content" in response.text
    assert client.get(f"/admin/jobs/{huge}").status_code == 200


def test_bytes_that_are_no_image_are_offered_as_a_download_and_shown_as_a_placeholder(
    served: Served, client: Client
) -> None:
    odd = _odd_job(served.sessions, "2001", "eve", photo=b"<html>not a picture</html>")
    truncated = _odd_job(served.sessions, "2002", "eve", photo=PHOTO[: len(PHOTO) // 2])
    client.log_in()
    original = client.get(f"/admin/jobs/{odd}/image/content")
    assert original.headers["Content-Type"] == "application/octet-stream"
    assert original.headers["Content-Disposition"] == f"attachment; filename=job-{odd}-content"
    thumb = client.get(f"/admin/jobs/{odd}/image/content?size=160")
    assert thumb.headers["Content-Type"] == "image/svg+xml" and "not an image this server can read" in thumb.text
    damaged = client.get(f"/admin/jobs/{truncated}/image/content?size=160")
    assert damaged.headers["Content-Type"] == "image/svg+xml" and "damaged" in damaged.text


def test_hostile_text_is_escaped_isolated_and_wrapped(served: Served, client: Client) -> None:
    xss = '<img src=x onerror="alert(1)">' + RLO
    job_id = _odd_job(served.sessions, "7004", HOSTILE_NAME, text=xss + " wrote: paint", error=HUGE_ERROR)
    _odd_job(served.sessions, "7005", xss, text=xss)
    client.log_in()
    for url in ("/admin/", "/admin/failures", "/admin/users", f"/admin/jobs/{job_id}", f"/admin/?user={xss}"):
        html = client.get(url).text
        assert "<img src=x" not in html and "onerror=\"alert" not in html, url
    page = client.get(f"/admin/jobs/{job_id}").text
    assert f'<bdi class="said " title="{HOSTILE_NAME}">{HOSTILE_NAME}</bdi></a> wrote:' in page  # isolated from "wrote:"
    assert "<bdi>&lt;img src=x" in page
    listed = client.get("/admin/users").text
    assert f'<bdi class="said " title="{HOSTILE_NAME}">' in listed  # cut to its cell, whole on hover


def test_the_job_table_shows_the_newest_first_a_page_at_a_time(served: Served, client: Client) -> None:
    with served.sessions.begin() as s:
        ids = [_request(s, str(4000 + n), f"user{n % 7}") for n in range(admin.PAGE * 2 + 5)]
    client.log_in()
    first = client.get("/admin/").text
    assert f"Showing {admin.PAGE} of {len(ids)} jobs, the newest first (page 1 of 3)" in first
    assert f'id="job-{ids[-1]}"' in first and f'id="job-{ids[-1 - admin.PAGE]}"' not in first
    third = client.get("/admin/?page=3").text
    assert f'id="job-{ids[0]}"' in third and third.count('<tr id="job-') == 5
    queued = client.get("/admin/api/queue?state=queued&page=2").json()
    assert queued["total"] == len(ids) and [r["position"] for r in queued["rows"][:2]] == [admin.PAGE + 1, admin.PAGE + 2]
    assert 'rel="next" href="/admin/?page=2"' in first and 'rel="prev" href="/admin/?page=2"' in third
    for odd in ("0", "-1", "x", "99999999999"):
        assert client.get(f"/admin/?page={odd}").status_code == 200


def test_the_users_page_is_paged_too(served: Served, client: Client) -> None:
    with served.sessions.begin() as s:
        for n in range(admin.PAGE + 3):
            users.seen(s, "x", f"id-{n}", f"user{n:03d}")
    client.log_in()
    first, second = client.get("/admin/users").text, client.get("/admin/users?page=2").text
    assert first.count('<tr id="user-') == admin.PAGE and second.count('<tr id="user-') == 3
    assert f"{admin.PAGE + 3} people have written to the bot" in first and "page 1 of 2" in first
    assert "user000" in first and "user052" in second


def test_the_lists_cost_a_few_queries_however_long_and_whichever_page(engine: Engine, sessions: Sessions) -> None:
    def queries(list_: Callable[[Session], object]) -> int:
        statements: list[str] = []

        def listen_(*args: object) -> None:
            statements.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", listen_)
        try:
            with sessions.begin() as s:
                list_(s)
        finally:
            event.remove(engine, "before_cursor_execute", listen_)
        return len(statements)

    def costs(number: int) -> tuple[int, int]:
        return (queries(lambda s: admin.users_page(s, number=number)),
                queries(lambda s: admin.queue_page(s, states=("queued",), number=number)))

    seed(sessions)
    few = costs(1)
    with sessions.begin() as s:
        for n in range(admin.PAGE * 2):
            _request(s, str(3000 + n), f"user{n}")
    assert costs(1) == few and costs(2) == few


# -- the chart --------------------------------------------------------------------------------------------


def test_the_chart_spans_every_day_and_escapes_nothing_unsafe() -> None:
    assert [nice_ceiling(v) for v in (0, 0.03, 1, 7, 12, 0.2)] == [1.0, 0.05, 1.0, 10.0, 20.0, 0.2]
    first = utcnow().date()
    svg = calls_and_spend([(first.isoformat(), 12, 0.06)], first=first, count=7)
    assert svg.count('<rect class="bar"') == 7 and "12 calls, $0.060" in svg and "<polyline" in svg


def test_a_job_held_back_says_until_when_and_a_renamed_user_keeps_their_jobs(
    client: Client, served: Served, seeded: Seeded
) -> None:
    until = utcnow() + timedelta(hours=3)
    with served.sessions.begin() as s:
        jobs.get(s, seeded.queued).not_before = until  # the platform's reset after a failed post
        alice = users.seen(s, "x", "id-alice", "alice_new")  # alice renamed, then wrote again
        posts.record(s, platform="x", post_ref="5001", author_ref="id-alice", author_username="alice_new",
                     text="@forgerbot", outcome=Outcome.QUEUED)
        s.flush()
        renamed = jobs.enqueue(s, platform="x", post_ref="5001", user_id=alice.id, author_username="alice_new",
                               content_image=PHOTO, style_image=PAINTING).id
    client.log_in()
    page = client.get(f"/admin/jobs/{seeded.queued}").text
    listed = [r["id"] for r in client.get("/admin/api/queue?user=alice_new").json()["rows"]]
    assert f"held until {until:%Y-%m-%d %H:%M}" in page
    assert sorted(listed) == sorted([seeded.failed, seeded.queued_too, renamed])  # her jobs under both names


def test_a_job_being_painted_has_the_same_eta_on_its_page_as_in_the_queue(sessions: Sessions, seeded: Seeded) -> None:
    with sessions.begin() as s:
        [row] = [r for r in admin.queue(s) if r.id == seeded.rendering]
        detail = admin.job(s, seeded.rendering)
        assert jobs.eta_s(s, seeded.rendering) == pytest.approx(detail.eta_s)
        assert jobs.eta_s(s, seeded.queued_too) == pytest.approx(168)
    assert row.progress == pytest.approx(0.4) and detail.eta_s == pytest.approx(84 * 0.6) == row.eta_s


# -- a real browser -------------------------------------------------------------------------------------------


@pytest.fixture
def browser_served(tmp_path: Path) -> Iterator[tuple[str, Sessions, Seeded]]:
    """The admin side on a loopback port over a fresh SQLite file, for Chromium."""
    engine = open_engine(f"sqlite:///{tmp_path / 'forger.sqlite3'}")
    schema.upgrade(engine)
    sessions = session_factory(engine)
    ids = seed(sessions)
    set_password(sessions)
    try:
        with serving(make_app(engine, sessions, Clock())) as base:
            yield base, sessions, ids
    finally:
        engine.dispose()


def _need_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: in CI the browser test must run (.ci/run installs Debian's chromium)")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium, or run .ci/run)")


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic",
        ])
        try:
            yield browser
        finally:
            browser.close()


IMAGES_LOADED = """ids => ids.every(id =>
    Array.from(document.querySelectorAll(`#job-${id} img`)).every(img => img.complete && img.naturalWidth > 0)
    && document.querySelectorAll(`#job-${id} img`).length >= 2)"""


@pytest.mark.browser
def test_an_admin_in_a_real_browser(browser_served: tuple[str, Sessions, Seeded]) -> None:
    _need_chromium()
    from playwright.sync_api import expect

    base, sessions, ids = browser_served
    bob = _user_id(sessions, "bob")
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.set_default_timeout(15_000)
        # Anything the pages' content policy blocks, or a script error, shows up here.
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))

        # Not logged in: the login form, whatever was asked for.
        page.goto(f"{base}/admin/failures")
        expect(page).to_have_url(re.compile(r"/admin/login\?next=/admin/failures$"))
        page.fill("input[name=password]", "wrong")
        page.click("button:has-text('Log in')")
        expect(page.locator(".flash-error")).to_have_text("Wrong password.")
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Log in')")
        expect(page).to_have_url(f"{base}/admin/failures")

        # The queue: a queued and a failed job, their thumbnails really loaded.
        page.click("nav >> text=Queue")
        expect(page.locator(f"#job-{ids.queued} .state")).to_have_text("queued")
        expect(page.locator(f"#job-{ids.failed} .state")).to_have_text("failed")
        page.wait_for_function(IMAGES_LOADED, arg=[ids.queued, ids.failed, ids.replied])
        widths = page.eval_on_selector_all(f"#job-{ids.replied} img", "imgs => imgs.map(i => i.naturalWidth)")
        assert widths == [160, 160, 160]

        # The worker paints on: the page's script moves the bar without a reload.
        with sessions.begin() as s:
            jobs.heartbeat(s, ids.rendering, worker="worker-1", lease_s=600, iteration=240, total=300)
        page.evaluate("forgerRefresh()")
        expect(page.locator(f"#job-{ids.rendering} .pct")).to_have_text("80%")
        assert page.eval_on_selector(f"#job-{ids.rendering} progress", "bar => bar.value") == pytest.approx(0.8)

        # Retry the failed job from the queue; it is queued again.
        page.locator(f"#job-{ids.failed}").get_by_role("button", name="Retry").click()
        expect(page.locator(".flash-ok")).to_have_text(f"Job {ids.failed} is queued again.")
        expect(page.locator(f"#job-{ids.failed} .state")).to_have_text("queued")
        assert state_of(sessions, ids.failed) == "queued"
        page.click(f"#job-{ids.failed} a.id")
        expect(page.locator("table.history")).to_contain_text("retried by dashboard")

        # A finished job's page, with its three images.
        page.goto(f"{base}/admin/jobs/{ids.replied}")
        page.wait_for_function("""() => Array.from(document.querySelectorAll('.images img'))
            .every(i => i.complete && i.naturalWidth > 0)""")
        assert page.locator(".images img").count() == 3

        # Ban a user; the users page says so.
        page.click("nav >> text=Users")
        row = page.locator(f"#user-{bob}")
        row.locator("input[name=reason]").fill("spam")
        row.get_by_role("button", name="Ban").click()
        expect(page.locator(".flash-ok")).to_have_text("@bob is banned (spam); their jobs not yet posted are cancelled.")
        expect(page.locator(f"#user-{bob} .ban")).to_contain_text("banned")
        expect(page.locator(f"#user-{bob}").get_by_role("button", name="Unban")).to_be_visible()
        with sessions.begin() as s:
            assert admin.user(s, bob).banned

        page.click("nav >> text=Budget")
        expect(page.locator("svg.chart")).to_be_visible()
        page.click("nav >> text=Logins")
        expect(page.locator("table.logins").first).to_contain_text("127.0.0.1")

        assert [p for p in problems if "401" not in p] == [], problems

        # Logged out, images and pages are refused again, and the old cookie is dead.
        page.click("button:has-text('Log out')")
        expect(page).to_have_url(re.compile(r"/admin/login\?out=1$"))
        expect(page.locator(".flash-ok")).to_have_text("Logged out.")
        refused = page.request.get(f"{base}/admin/jobs/{ids.replied}/image/content")
        assert refused.status == 401 and json.loads(refused.text()) == {"error": "log in first"}


def _hostile(sessions: Sessions) -> dict[str, int]:
    """The data set an attacker or an old version might leave: long, right-to-left, unreadable."""
    long_name = "rtl" + RLO + "dlrow olleh" + "W" * 286  # 300 characters, one word (SQLite keeps them all)
    found = {
        "long": _odd_job(sessions, "9001", long_name, text=long_name + " " + "ok" * 400, error=HUGE_ERROR),
        "xss": _odd_job(sessions, "9002", '<img src=x onerror="alert(1)">' + RLO + "abc",
                        options={"strength": "extreme<script>"}),
        "huge": _odd_job(sessions, "9003", "mallory", photo=_huge_png()),
        "junk": _odd_job(sessions, "9004", "eve/slash", photo=b"not a picture at all"),
    }
    with sessions.begin() as s:
        s.get_one(Job, found["long"]).author_username = long_name  # as an older version stored it
    return found


PAGES = ["queue", "failures", "users", "budget", "logins", "job-long", "job-xss", "job-huge", "job-junk", "login"]


@pytest.mark.browser
def test_every_page_holds_hostile_data_at_desktop_and_phone_widths(
    browser_served: tuple[str, Sessions, Seeded]
) -> None:
    """Screenshots of every page at 1280 and 390 px (in /tmp/admin-shots); nothing wider than the
    window, the menu and the buttons on screen, nothing reversed, no script run."""
    _need_chromium()
    base, sessions, _ = browser_served
    odd = _hostile(sessions)
    SHOTS.mkdir(exist_ok=True)
    urls = {"queue": "/admin/", "failures": "/admin/failures", "users": "/admin/users", "budget": "/admin/budget",
            "logins": "/admin/logins", "login": "/admin/login"}
    urls |= {f"job-{name}": f"/admin/jobs/{job_id}" for name, job_id in odd.items()}
    with chromium() as browser:
        for width in (1280, 390):
            context = browser.new_context(viewport={"width": width, "height": 900})
            page = context.new_page()
            page.set_default_timeout(15_000)
            dialogs: list[str] = []
            def dismiss(dialog: Any) -> None:  # an alert() would mean a script of the data ran
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", dismiss)
            page.goto(f"{base}/admin/login")
            page.fill("input[name=password]", "a wrong guess")  # for the Logins page to show
            page.click("button:has-text('Log in')")
            page.fill("input[name=password]", PASSWORD)
            page.click("button:has-text('Log in')")
            page.wait_for_url(f"{base}/admin/")
            for name in PAGES:
                if name == "login":
                    page.click("button:has-text('Log out')")
                    page.wait_for_url(re.compile(r"/admin/login"))
                else:
                    page.goto(base + urls[name])
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
                wide = page.evaluate("document.documentElement.scrollWidth")
                assert wide <= width, f"{name} at {width} px is {wide} px wide"
                if name != "login":
                    for link in ("Queue", "Users", "Budget", "Logins"):
                        box = page.locator(f"nav >> text={link}").bounding_box()
                        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (name, width, link)
                    box = page.locator("button:has-text('Log out')").bounding_box()
                    assert box and box["x"] + box["width"] <= width, (name, width)
            # The placeholders say why, where a broken-image icon was.
            page.goto(f"{base}/admin/login")
            page.fill("input[name=password]", PASSWORD)
            page.click("button:has-text('Log in')")
            page.goto(f"{base}{urls['job-huge']}")
            assert page.eval_on_selector(".images img", "i => i.complete && i.naturalWidth > 0")
            if width == 1280:
                page.goto(f"{base}/admin/users")
                long_row = page.locator("tr", has=page.locator("bdi[title^='rtl']"))
                for button in ("Ban", "Set"):
                    box = long_row.get_by_role("button", name=button).bounding_box()
                    assert box and box["x"] + box["width"] <= width, button
                # Isolated: the text after the name reads left to right.
                page.goto(f"{base}{urls['job-long']}")
                assert "wrote:" in page.locator(".tweet").inner_text()
            assert dialogs == []
            context.close()


def test_an_alert_of_the_last_day_shows_on_the_dashboard(served: Served, client: Client) -> None:
    from storage import alerts

    client.log_in()
    assert "alert" not in client.get("/admin/").text
    with served.sessions.begin() as s:
        alerts.raise_alert(s, kind="mention_gap", platform="x", message="x served 800 mentions: older ones <may> be lost")
    page = client.get("/admin/").text
    assert "1 alert in the last 24 hours" in page and "older ones &lt;may&gt; be lost" in page
