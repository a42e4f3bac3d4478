"""The admin dashboard: login, CSRF, expiry, every page and action, images; then a real browser.

The ``app.test_client()`` tests take ``sessions``, so they run on SQLite and on PostgreSQL. The
browser test serves the app over loopback and drives Debian's Chromium with Playwright.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image, ImageDraw, ImageOps
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from bot import admin
from bot.dashboard import EXTENSION, create_app
from bot.dashboard.charts import calls_and_spend, nice_ceiling
from storage import jobs, ledger, posts, schema, users
from storage.db import open_engine, session_factory
from storage.models import JobState, Outcome, utcnow

PASSWORD = "correct horse battery staple"
LIFETIME_S = 3600
CHROMIUM = Path("/usr/bin/chromium")
SCREENS = Path("/tmp/forger-screens")
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



def test_a_long_queue_shows_the_next_jobs_first_and_says_how_many_more(
    client: FlaskClient, sessions: Sessions
) -> None:
    with sessions.begin() as s:
        ids = [_request(s, str(4000 + n), f"user{n % 7}") for n in range(admin.QUEUE_PAGE + 5)]
    log_in(client)

    queued = client.get("/?state=queued").text
    rows = client.get("/api/queue?state=queued").get_json()["rows"]

    assert f"Showing {admin.QUEUE_PAGE} of {len(ids)} jobs, the next to be painted first" in queued
    assert [r["position"] for r in rows[:3]] == [1, 2, 3] and rows[0]["id"] == ids[0]
    assert "Showing" not in client.get("/failures").text


def test_a_job_held_back_says_until_when_and_a_renamed_user_keeps_their_jobs(
    client: FlaskClient, sessions: Sessions, seeded: Seeded
) -> None:
    until = utcnow() + timedelta(hours=3)
    with sessions.begin() as s:
        jobs.get(s, seeded.queued).not_before = until  # X's reset after a failed post
        alice = users.seen(s, "x", "id-alice", "alice_new")  # alice renamed on X, then wrote again
        posts.record(s, platform="x", post_ref="5001", author_ref="id-alice", author_username="alice_new",
                     text="@forgerbot", outcome=Outcome.QUEUED)
        s.flush()
        renamed = jobs.enqueue(s, platform="x", post_ref="5001", user_id=alice.id, author_username="alice_new",
                               content_image=PHOTO, style_image=PAINTING).id
    log_in(client)

    page = client.get(f"/jobs/{seeded.queued}").text
    listed = [r["id"] for r in client.get("/api/queue?user=alice_new").get_json()["rows"]]

    assert f"held until {until:%Y-%m-%d %H:%M}" in page
    assert sorted(listed) == sorted([seeded.failed, seeded.queued_too, renamed])  # her jobs under both names


def test_a_job_being_painted_has_the_same_eta_on_its_page_as_in_the_queue(sessions: Sessions, seeded: Seeded) -> None:
    with sessions.begin() as s:
        [row] = [r for r in admin.queue(s) if r.id == seeded.rendering]
        detail = admin.job(s, seeded.rendering)
    assert row.progress == pytest.approx(0.4) and detail.eta_s == pytest.approx(84 * 0.6)


def test_the_users_and_queue_lists_cost_a_few_queries_however_long(engine: Engine, sessions: Sessions) -> None:
    def queries(list_: Callable[[Session], object]) -> int:
        statements: list[str] = []

        def listen(*args: object) -> None:
            statements.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", listen)
        try:
            with sessions.begin() as s:
                list_(s)
        finally:
            event.remove(engine, "before_cursor_execute", listen)
        return len(statements)

    def costs() -> tuple[int, int]:
        return queries(admin.everyone), queries(lambda s: admin.queue(s, states=("queued",)))

    seed(sessions)
    few = costs()
    with sessions.begin() as s:
        for n in range(40):
            _request(s, str(3000 + n), f"user{n}")
    assert costs() == few


# -- the app and a logged-in client ----------------------------------------------------------------


class Clock:
    """Epoch seconds that move only when a test moves them: sessions expire without waiting."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(engine: Engine, sessions: Sessions, clock: Clock) -> Flask:
    return create_app(sessions, password=PASSWORD, secret_key=os.urandom(32), budget_usd=50.0,
                      session_lifetime_s=LIFETIME_S, quota_per_day=5, clock=clock,
                      reads=session_factory(engine, read_only=True))


@pytest.fixture
def seeded(sessions: Sessions) -> Seeded:
    return seed(sessions)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def log_in(client: FlaskClient) -> str:
    """Log in through the form; returns the session's CSRF token."""
    response = client.post("/login", data={"csrf": csrf_of(client.get("/login").text), "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    return csrf_of(client.get("/").text)


# -- refused without a login -------------------------------------------------------------------------


def _routes(ids: Seeded) -> tuple[list[str], list[str], list[tuple[str, dict[str, str]]]]:
    pages = ["/", "/?state=failed&user=alice", "/failures", "/users", "/budget", f"/jobs/{ids.failed}"]
    data = [f"/jobs/{ids.replied}/image/{role}" for role in ("content", "style", "result")]
    data += [f"/jobs/{ids.replied}/image/result?size=160", "/api/queue"]
    actions = [
        (f"/jobs/{ids.failed}/retry", {}), (f"/jobs/{ids.queued}/cancel", {}),
        ("/users/bob/ban", {"reason": "spam"}), ("/users/bob/unban", {}), ("/users/bob/priority", {"priority": "9"}),
        ("/logout", {}),
    ]
    return pages, data, actions


def test_every_route_is_refused_without_a_login(app: Flask, client: FlaskClient, seeded: Seeded,
                                                 sessions: Sessions) -> None:
    pages, data, actions = _routes(seeded)
    # Every route the app has is in the lists above (a new route must be added to them).
    tried = {re.sub(r"\d+", "0", p.split("?")[0]) for p in pages + data + [a for a, _ in actions]}
    public = {"/login", "/static/0", "/favicon.svg"}
    served = {re.sub(r"<[^>]+>", "0", r.rule) for r in app.url_map.iter_rules()} - public
    assert served == {re.sub(r"/(bob|content|style|result)(?=/|$)", "/0", t) for t in tried}

    assert client.get("/favicon.svg").content_type == "image/svg+xml"  # public: it tells nothing
    for page in pages:
        response = client.get(page)
        assert response.status_code == 302, page
        assert response.headers["Location"].startswith("/login?next=/"), page
    for url in data:
        response = client.get(url)
        assert (response.status_code, response.json) == (401, {"error": "log in first"}), url
        assert not response.content_type.startswith("image/")
    # Even carrying a valid CSRF token (the login form hands one out), actions need a login.
    token = csrf_of(client.get("/login").text)
    for url, form in actions:
        assert client.post(url, data={"csrf": token, **form}).status_code == 401, url
    with sessions.begin() as s:
        assert admin.job(s, seeded.failed).row.state == "failed"
        assert admin.job(s, seeded.queued).row.state == "queued"
        bob = admin.user(s, "bob")
        assert (bob.banned, bob.priority) == (False, 0)


def test_a_cookie_signed_by_another_key_is_no_login(app: Flask, client: FlaskClient, sessions: Sessions,
                                                    clock: Clock) -> None:
    log_in(client)
    cookie = client.get_cookie("forger_admin")
    assert cookie is not None
    other = create_app(sessions, password=PASSWORD, secret_key=os.urandom(32), budget_usd=50.0, clock=clock)
    stranger = other.test_client()
    stranger.set_cookie("forger_admin", cookie.value)
    assert stranger.get("/").status_code == 302
    assert stranger.get("/api/queue").status_code == 401


def test_a_wrong_password_logs_nobody_in(client: FlaskClient) -> None:
    response = client.post("/login", data={"csrf": csrf_of(client.get("/login").text), "password": "guess"})
    assert response.status_code == 401 and "Wrong password." in response.text
    assert client.get("/").status_code == 302


def test_login_cookie_and_headers(client: FlaskClient) -> None:
    response = client.post("/login", data={"csrf": csrf_of(client.get("/login").text), "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    page = client.get("/")
    policy = page.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce and f'<script nonce="{nonce.group(1)}">' in page.text
    assert "frame-ancestors 'none'" in policy and page.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/login").headers["Location"] == "/"  # already logged in


def test_login_goes_back_where_it_was_asked_but_never_off_site(client: FlaskClient) -> None:
    assert client.get("/users").headers["Location"] == "/login?next=/users"
    for target, lands in (("/users", "/users"), ("//evil.example/", "/"), ("https://evil.example/", "/")):
        response = client.post("/login", data={
            "csrf": csrf_of(client.get("/login").text), "password": PASSWORD, "next": target,
        })
        assert response.headers["Location"] == lands, target
        client.post("/logout", data={"csrf": csrf_of(client.get("/").text)})


def test_logout_ends_the_session(client: FlaskClient) -> None:
    token = log_in(client)
    response = client.post("/logout", data={"csrf": token}, follow_redirects=True)
    assert "Logged out." in response.text
    assert client.get("/").status_code == 302


def test_the_password_is_kept_only_as_a_hash(app: Flask) -> None:
    kept = app.extensions[EXTENSION]
    everything = repr(app.config) + repr(kept) + repr(vars(kept.password))
    assert PASSWORD not in everything and PASSWORD.encode().hex() not in everything
    assert kept.password.matches(PASSWORD) and not kept.password.matches(PASSWORD + " ")


def test_an_empty_password_is_refused(sessions: Sessions) -> None:
    with pytest.raises(ValueError, match="password must not be empty"):
        create_app(sessions, password="", secret_key=os.urandom(32), budget_usd=50.0)


# -- CSRF and expiry --------------------------------------------------------------------------------------


def test_posts_without_the_right_csrf_token_are_rejected(client: FlaskClient, seeded: Seeded,
                                                          sessions: Sessions) -> None:
    assert client.post("/login", data={"password": PASSWORD}).status_code == 400  # login too
    token = log_in(client)
    retry = f"/jobs/{seeded.failed}/retry"
    for form in ({}, {"csrf": ""}, {"csrf": "forged"}, {"csrf": token[:-1]}):
        response = client.post(retry, data=form)
        assert response.status_code == 400 and "CSRF" in response.text, form
    assert client.post("/users/bob/ban", data={"reason": "x"}).status_code == 400
    assert state_of(sessions, seeded.failed) == "failed"
    with sessions.begin() as s:
        assert not admin.user(s, "bob").banned
    assert client.post(retry, data={"csrf": token}).status_code == 302
    assert state_of(sessions, seeded.failed) == "queued"


def test_a_login_expires_after_its_lifetime_however_busy(client: FlaskClient, clock: Clock, seeded: Seeded) -> None:
    token = log_in(client)
    clock.now += LIFETIME_S - 1
    assert client.get("/").status_code == 200
    clock.now += 1
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert "Your session expired" in client.get(response.headers["Location"]).text
    assert client.get(f"/jobs/{seeded.failed}/image/content").status_code == 401
    assert client.post(f"/jobs/{seeded.failed}/retry", data={"csrf": token}).status_code == 401


# -- what an admin sees -------------------------------------------------------------------------------------


def test_the_queue_page_shows_jobs_thumbnails_progress_and_eta(client: FlaskClient, seeded: Seeded) -> None:
    log_in(client)
    html = client.get("/").text
    for job_id in (seeded.failed, seeded.replied, seeded.rendering, seeded.queued):
        assert f'id="job-{job_id}"' in html
        assert f'src="/jobs/{job_id}/image/content?size=160"' in html
    assert f'src="/jobs/{seeded.replied}/image/result?size=160"' in html
    assert f'src="/jobs/{seeded.queued}/image/result' not in html  # nothing painted yet
    assert '<progress max="1" value="0.400">' in html
    filtered = client.get("/?state=queued&user=alice").text
    assert f'id="job-{seeded.queued_too}"' in filtered and f'id="job-{seeded.queued}"' not in filtered
    assert "unknown state" in client.get("/?state=bogus").text


def test_the_queue_as_json_for_the_live_bars(client: FlaskClient, seeded: Seeded) -> None:
    log_in(client)
    rows = {r["id"]: r for r in client.get("/api/queue").get_json()["rows"]}
    assert rows[seeded.rendering]["progress"] == pytest.approx(0.4)
    # One render measured (84 s): the rendering job has 60% of one to go; dave is next, alice after.
    assert rows[seeded.rendering]["eta_s"] == pytest.approx(84 * 0.6)
    assert (rows[seeded.queued]["position"], rows[seeded.queued]["eta_s"]) == (1, pytest.approx(84))
    assert rows[seeded.queued_too]["eta_s"] == pytest.approx(168)
    only = client.get("/api/queue?state=failed").get_json()["rows"]
    assert [r["id"] for r in only] == [seeded.failed]
    wrong = client.get("/api/queue?state=bogus")
    assert wrong.status_code == 400 and "unknown state" in wrong.get_json()["error"]


def test_a_job_page_has_its_history_timings_images_and_buttons(client: FlaskClient, seeded: Seeded) -> None:
    log_in(client)
    html = client.get(f"/jobs/{seeded.failed}").text
    assert "the renderer ran out of memory" in html and "claimed by worker-1" in html
    assert f'action="/jobs/{seeded.failed}/retry"' in html and "/cancel" not in html
    done = client.get(f"/jobs/{seeded.replied}").text
    for role in ("content", "style", "result"):
        assert f'src="/jobs/{seeded.replied}/image/{role}?size=480"' in done
    assert "9002" in done and "1m 24s" in done  # the reply's tweet, the render time
    waiting = client.get(f"/jobs/{seeded.queued}").text
    assert f'action="/jobs/{seeded.queued}/cancel"' in waiting and "not painted yet" in waiting
    missing = client.get("/jobs/999999")
    assert missing.status_code == 404 and "no job 999999" in missing.text


def test_the_failures_users_and_budget_pages(client: FlaskClient, seeded: Seeded) -> None:
    log_in(client)
    failures = client.get("/failures").text
    assert f'id="job-{seeded.failed}"' in failures and f'id="job-{seeded.queued}"' not in failures
    assert "the renderer ran out of memory" in failures
    people = client.get("/users").text
    for name in ("alice", "bob", "carol", "dave"):
        assert f'id="user-{name}"' in people
    assert re.search(r'id="user-alice".*?2 / 5', people, re.S)  # two renders of a quota of five
    money = client.get("/budget").text
    assert "$0.07" in money and "of $50.00" in money and "2 calls" in money
    assert "<svg" in money and money.count('<rect class="bar"') == 30
    assert "GET /2/users/:id/mentions" in money and "287 / 300" in money
    assert re.search(r"POST /2/tweets.*?100 / 100.*?reset", money, re.DOTALL)


# -- what an admin does -------------------------------------------------------------------------------------


def test_actions_change_the_database_and_say_so(client: FlaskClient, seeded: Seeded, sessions: Sessions) -> None:
    token = log_in(client)

    def post(url: str, **form: str) -> str:
        response = client.post(url, data={"csrf": token, **form}, follow_redirects=True)
        assert response.status_code == 200 and "Traceback" not in response.text
        return response.text

    assert "is queued again" in post(f"/jobs/{seeded.failed}/retry")
    assert state_of(sessions, seeded.failed) == "queued"
    assert "is cancelled" in post(f"/jobs/{seeded.queued}/cancel", next="/failures")
    assert state_of(sessions, seeded.queued) == "cancelled"
    assert "@bob is banned (spams)" in post("/users/bob/ban", reason="spams")
    assert "now has priority 7" in post("/users/carol/priority", priority="7")
    with sessions.begin() as s:
        bob, carol = admin.user(s, "bob"), admin.user(s, "carol")
        assert (bob.banned, bob.ban_reason, carol.priority) == (True, "spams", 7)
    assert "no longer banned" in post("/users/bob/unban")
    with sessions.begin() as s:
        assert not admin.user(s, "bob").banned
    # What cannot be done is said, not thrown.
    assert "only failed jobs can be retried" in post(f"/jobs/{seeded.queued_too}/retry")
    assert "can no longer be cancelled" in post(f"/jobs/{seeded.replied}/cancel")
    assert "no user @nobody" in post("/users/nobody/ban")
    assert "from 0 to 100" in post("/users/carol/priority", priority="high")
    assert "from 0 to 100" in post("/users/carol/priority", priority="²")
    assert state_of(sessions, seeded.queued_too) == JobState.QUEUED.value


# -- images -------------------------------------------------------------------------------------------------


def test_images_come_as_stored_or_as_thumbnails(client: FlaskClient, seeded: Seeded) -> None:
    log_in(client)
    original = client.get(f"/jobs/{seeded.replied}/image/result")
    assert (original.status_code, original.content_type, original.data) == (200, "image/png", RESULT)
    assert original.headers["Cache-Control"] == "private, max-age=60"
    again = client.get(f"/jobs/{seeded.replied}/image/result", headers={"If-None-Match": original.headers["ETag"]})
    assert (again.status_code, again.data) == (304, b"")
    small = client.get(f"/jobs/{seeded.replied}/image/content?size=40")
    assert small.content_type == "image/jpeg"
    with Image.open(io.BytesIO(small.data)) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (40, 30)
    assert client.get(f"/jobs/{seeded.queued}/image/result").status_code == 404
    assert client.get(f"/jobs/{seeded.queued}/image/secret").status_code == 404
    assert client.get("/jobs/999999/image/content").status_code == 404
    assert client.get("/jobs/99999999999999999999/image/content").status_code == 404
    assert client.get("/jobs/99999999999999999999").status_code == 404
    for size in ("5", "4096", "big", "", "²"):
        assert client.get(f"/jobs/{seeded.queued}/image/content?size={size}").status_code == 400, size


def test_bytes_that_are_no_image_are_offered_as_a_download(client: FlaskClient, sessions: Sessions) -> None:
    with sessions.begin() as s:
        posts.record(s, platform="x", post_ref="2001", author_ref="id-eve", author_username="eve", text="@forgerbot",
                     outcome=Outcome.QUEUED)
        s.flush()
        odd = jobs.enqueue(s, platform="x", post_ref="2001", author_username="eve",
                           content_image=b"<html>not a picture</html>", style_image=PAINTING).id
    log_in(client)
    original = client.get(f"/jobs/{odd}/image/content")
    assert original.content_type == "application/octet-stream"
    assert original.headers["Content-Disposition"] == f"attachment; filename=job-{odd}-content"
    assert client.get(f"/jobs/{odd}/image/content?size=160").status_code == 415


# -- the chart --------------------------------------------------------------------------------------------


def test_the_chart_spans_every_day_and_escapes_nothing_unsafe() -> None:
    assert [nice_ceiling(v) for v in (0, 0.03, 1, 7, 12, 0.2)] == [1.0, 0.05, 1.0, 10.0, 20.0, 0.2]
    first = utcnow().date()
    svg = calls_and_spend([(first.isoformat(), 12, 0.06)], first=first, count=7)
    assert svg.count('<rect class="bar"') == 7 and "12 calls, $0.060" in svg and "<polyline" in svg


# -- a real browser -------------------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Sessions, Seeded]]:
    """The dashboard on a loopback port (a real HTTP server in a thread) over a fresh SQLite file."""
    from werkzeug.serving import make_server

    engine = open_engine(f"sqlite:///{tmp_path / 'forger.sqlite3'}")
    schema.upgrade(engine)
    sessions = session_factory(engine)
    ids = seed(sessions)
    app = create_app(sessions, password=PASSWORD, secret_key=os.urandom(32), budget_usd=50.0, quota_per_day=5)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", sessions, ids
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        engine.dispose()


def _need_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: in CI the browser test must run (.ci/run installs Debian's chromium)")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium, or run .ci/run)")


IMAGES_LOADED = """ids => ids.every(id =>
    Array.from(document.querySelectorAll(`#job-${id} img`)).every(img => img.complete && img.naturalWidth > 0)
    && document.querySelectorAll(`#job-${id} img`).length >= 2)"""


@pytest.mark.browser
def test_an_admin_in_a_real_browser(served: tuple[str, Sessions, Seeded], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    _need_chromium()
    from playwright.sync_api import expect, sync_playwright

    base, sessions, ids = served
    shots = tmp_path / "screens"
    shots.mkdir()
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic",
        ])
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.set_default_timeout(15_000)
            # Anything the pages' content policy blocks, or a script error, shows up here.
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))

            # Not logged in: the login form, whatever was asked for.
            page.goto(f"{base}/failures")
            expect(page).to_have_url(re.compile(r"/login\?next=/failures$"))
            page.fill("input[name=password]", "wrong")
            page.click("button:has-text('Log in')")
            expect(page.locator(".flash-error")).to_have_text("Wrong password.")
            page.fill("input[name=password]", PASSWORD)
            page.click("button:has-text('Log in')")
            expect(page).to_have_url(f"{base}/failures")

            # The queue: a queued and a failed job, their thumbnails really loaded.
            page.click("nav >> text=Queue")
            expect(page.locator(f"#job-{ids.queued} .state")).to_have_text("queued")
            expect(page.locator(f"#job-{ids.failed} .state")).to_have_text("failed")
            page.wait_for_function(IMAGES_LOADED, arg=[ids.queued, ids.failed, ids.replied])
            widths = page.eval_on_selector_all(f"#job-{ids.replied} img", "imgs => imgs.map(i => i.naturalWidth)")
            assert widths == [160, 160, 160]
            page.screenshot(path=str(shots / "queue.png"), full_page=True)

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
            page.goto(f"{base}/jobs/{ids.replied}")
            page.wait_for_function("""() => Array.from(document.querySelectorAll('.images img'))
                .every(i => i.complete && i.naturalWidth > 0)""")
            assert page.locator(".images img").count() == 3
            page.screenshot(path=str(shots / "job.png"), full_page=True)

            # Ban a user; the users page says so.
            page.click("nav >> text=Users")
            row = page.locator("#user-bob")
            row.locator("input[name=reason]").fill("spam")
            row.get_by_role("button", name="Ban").click()
            expect(page.locator(".flash-ok")).to_have_text(
                "@bob is banned (spam); their jobs not yet posted are cancelled."
            )
            expect(page.locator("#user-bob .ban")).to_contain_text("banned")
            expect(page.locator("#user-bob").get_by_role("button", name="Unban")).to_be_visible()
            with sessions.begin() as s:
                assert admin.user(s, "bob").banned
            page.screenshot(path=str(shots / "users.png"), full_page=True)

            page.click("nav >> text=Budget")
            expect(page.locator("svg.chart")).to_be_visible()
            page.screenshot(path=str(shots / "budget.png"), full_page=True)

            assert [p for p in problems if "401" not in p] == [], problems

            # Logged out, images and pages are refused again.
            page.click("button:has-text('Log out')")
            expect(page).to_have_url(re.compile(r"/login$"))
            refused = page.request.get(f"{base}/jobs/{ids.replied}/image/content")
            assert refused.status == 401 and json.loads(refused.text()) == {"error": "log in first"}
        finally:
            browser.close()
    elapsed = time.monotonic() - started

    SCREENS.mkdir(exist_ok=True)
    for shot in shots.iterdir():
        shutil.copy(shot, SCREENS / shot.name)
    with capsys.disabled():
        print(f"\nbrowser test: {elapsed:.1f} s in Chromium; screenshots in {shots} (copies in {SCREENS})")
