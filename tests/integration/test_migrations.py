"""Migrations keep the data: a database filled at 0003 comes through 0004 with every row and value.

Run on SQLite and on PostgreSQL (marked ``postgres``), each from an empty database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, make_url, select, text
from sqlalchemy.orm import Session

from storage import schema
from storage.db import open_engine
from storage.models import ApiCall, Base, Job, JobEvent, JobState, Outcome, Post, Reply, User

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
STATES = ["queued", "rendering", "uploading", "replied", "failed", "cancelled"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database (no migration applied), on each backend in turn."""
    if request.param == "sqlite":
        engine = open_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
        yield engine
        engine.dispose()
        return
    admin, _template = request.getfixturevalue("postgres_template")
    name = f"forger_migration_{uuid.uuid4().hex[:10]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    engine = open_engine(make_url(str(admin.url)).set(database=name).render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _insert(c: Connection, table: str, **row: Any) -> None:
    columns = ", ".join(f'"{k}"' for k in row)
    c.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + k for k in row)})"), row)


def _fill_0003(c: Connection) -> None:
    """Rows as Forger 0003 wrote them: every job state, bans and priority, replies owed and sent."""
    authors = {"11": "alice", "12": "bob", "13": "carol", "14": "dave"}
    _insert(c, "users", id="11", username="alice", banned=True, ban_reason="spam", priority=0, created_at=_at(0))
    _insert(c, "users", id="12", username="bob", banned=False, ban_reason=None, priority=5, created_at=_at(1))
    _insert(c, "users", id="13", username="carol", banned=False, ban_reason=None, priority=0, created_at=_at(2))
    # dave (14) has jobs but no user row: written before users were recorded at admission
    for n, state in enumerate(STATES):
        tweet, author = str(1000 + n), str(11 + n % 4)
        _insert(c, "mentions", tweet_id=tweet, author_id=author, author_username=authors[author],
                text=f"@forgerbot paint {n}", outcome="queued", reason=None, seen_at=_at(10 + n))
        _insert(c, "jobs", id=n + 1, tweet_id=tweet, author_id=author, author_username=authors[author], state=state,
                priority=n % 3, content_image=b"photo-%d" % n, style_image=b"painting-%d" % n,
                result_image=b"result-%d" % n if state in ("uploading", "replied") else None,
                reply_tweet_id="9000" if state == "replied" else None,
                error="X failed" if state == "failed" else None, attempts=n, options='{"strength": "high"}',
                not_before=_at(60) if state == "queued" else None,
                lease_owner="host:1:abc" if state in ("rendering", "uploading") else None,
                lease_expires_at=_at(30) if state in ("rendering", "uploading") else None,
                progress_iteration=n * 10, progress_total=100, render_s=12.5 if state == "replied" else None,
                created_at=_at(10 + n), updated_at=_at(20 + n), started_at=_at(15 + n) if n else None,
                finished_at=_at(25) if state in ("replied", "failed", "cancelled") else None)
        _insert(c, "job_events", id=2 * n + 1, job_id=n + 1, from_state=None, to_state="queued",
                reason="queued from a mention", worker=None, at=_at(10 + n))
        _insert(c, "job_events", id=2 * n + 2, job_id=n + 1, from_state="queued", to_state="rendering",
                reason="claimed by w", worker="w", at=_at(11 + n))
    _insert(c, "mentions", tweet_id="2000", author_id="12", author_username="bob", text="@forgerbot hi",
            outcome="refused", reason="no photo", seen_at=_at(40))
    _insert(c, "mentions", tweet_id="2001", author_id="13", author_username="carol", text="RT @forgerbot",
            outcome="ignored", reason="a retweet", seen_at=_at(41))
    _insert(c, "replies", id=1, in_reply_to_tweet_id="2000", kind="refusal", optional=False, text="@bob how to",
            reply_tweet_id="9100", attempts=1, error=None, created_at=_at(40), sent_at=_at(42),
            claimed_by=None, claimed_until=None, not_before=None)
    _insert(c, "replies", id=2, in_reply_to_tweet_id="1004", kind="failure", optional=False, text="@bob sorry",
            reply_tweet_id=None, attempts=2, error="X failed", created_at=_at(43), sent_at=None,
            claimed_by="host:2:def", claimed_until=_at(48), not_before=_at(50))
    _insert(c, "replies", id=3, in_reply_to_tweet_id="1000", kind="ack", optional=True, text="@alice you're #1",
            reply_tweet_id=None, attempts=0, error=None, created_at=_at(44), sent_at=None,
            claimed_by=None, claimed_until=None, not_before=None)
    _insert(c, "cursors", name="mentions", value="1862000000000000000", updated_at=_at(45))
    _insert(c, "api_calls", id=1, endpoint="GET /2/users/:id/mentions", status=200, cost_usd=0.01, at=_at(46))
    _insert(c, "api_calls", id=2, endpoint="POST /2/tweets", status=None, cost_usd=0.0, at=_at(47))
    _insert(c, "rate_windows", endpoint="POST /2/tweets", limit=100, remaining=0, reset_at=_at(60),
            capped_until=_at(120), updated_at=_at(47))
    _insert(c, "rate_windows", endpoint="GET /2/tweets/:id", limit=300, remaining=299, reset_at=_at(61),
            capped_until=None, updated_at=_at(46))


def _rows(c: Connection, query: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in c.execute(text(query))]


def _dump(c: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of schema 0003, its rows in a fixed order."""
    return {
        "users": _rows(c, "SELECT id, username, banned, ban_reason, priority, created_at FROM users ORDER BY id"),
        "mentions": _rows(c, "SELECT tweet_id, author_id, author_username, text, outcome, reason, seen_at "
                             "FROM mentions ORDER BY tweet_id"),
        "jobs": _rows(c, "SELECT id, tweet_id, author_id, author_username, state, priority, content_image, "
                         "style_image, result_image, reply_tweet_id, error, attempts, lease_owner, lease_expires_at, "
                         "progress_iteration, progress_total, render_s, created_at, updated_at, started_at, "
                         "finished_at, not_before FROM jobs ORDER BY id"),
        "options": _rows(c, "SELECT id, options FROM jobs ORDER BY id"),
        "job_events": _rows(c, "SELECT id, job_id, from_state, to_state, reason, worker, at FROM job_events ORDER BY id"),
        "replies": _rows(c, "SELECT id, in_reply_to_tweet_id, kind, optional, text, reply_tweet_id, attempts, error, "
                            "claimed_by, claimed_until, not_before, created_at, sent_at FROM replies ORDER BY id"),
        "cursors": _rows(c, "SELECT name, value, updated_at FROM cursors ORDER BY name"),
        "api_calls": _rows(c, "SELECT id, endpoint, status, cost_usd, at FROM api_calls ORDER BY id"),
        "rate_windows": _rows(c, 'SELECT endpoint, "limit", remaining, reset_at, capped_until, updated_at '
                                 "FROM rate_windows ORDER BY endpoint"),
    }


def _x(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows of platform "x", the platform column left out (it is selected first)."""
    assert all(row[0] == "x" for row in rows), rows
    return [row[1:] for row in rows]


def test_0004_turns_every_row_into_a_row_of_platform_x(empty: Engine) -> None:
    schema.upgrade(empty, "0003")
    with empty.begin() as c:
        _fill_0003(c)
    with empty.connect() as c:
        before = _dump(c)

    schema.upgrade(empty, "0004")

    with empty.connect() as c:
        assert _x(_rows(c, "SELECT platform, post_ref, author_ref, author_username, text, outcome, reason, seen_at "
                           "FROM posts ORDER BY post_ref")) == before["mentions"]
        assert _x(_rows(c, "SELECT platform, user_ref, username, banned, ban_reason, priority, created_at "
                           "FROM users ORDER BY user_ref")) == [
            *before["users"],
            # dave gets a row: as his jobs called him, unbanned, first seen with his first job
            ("14", "dave", False, None, 0, next(j[17] for j in before["jobs"] if j[2] == "14")),
        ]
        assert _x(_rows(c, "SELECT j.platform, j.id, j.post_ref, u.user_ref, j.author_username, j.state, j.priority, "
                           "j.content_image, j.style_image, j.result_image, j.reply_ref, j.error, j.attempts, "
                           "j.lease_owner, j.lease_expires_at, j.progress_iteration, j.progress_total, j.render_s, "
                           "j.created_at, j.updated_at, j.started_at, j.finished_at, j.not_before "
                           "FROM jobs j JOIN users u ON u.id = j.user_id ORDER BY j.id")) == before["jobs"]
        assert _rows(c, "SELECT id, options FROM jobs ORDER BY id") == before["options"]
        assert _rows(c, "SELECT id, job_id, from_state, to_state, reason, worker, at "
                        "FROM job_events ORDER BY id") == before["job_events"]
        assert _x(_rows(c, "SELECT platform, id, in_reply_to_ref, kind, optional, text, reply_ref, attempts, error, "
                           "claimed_by, claimed_until, not_before, created_at, sent_at "
                           "FROM replies ORDER BY id")) == before["replies"]
        assert _x(_rows(c, "SELECT platform, name, value, updated_at FROM cursors ORDER BY name")) == before["cursors"]
        assert _x(_rows(c, "SELECT platform, id, endpoint, status, cost_usd, at "
                           "FROM api_calls ORDER BY id")) == before["api_calls"]
        assert _x(_rows(c, 'SELECT platform, endpoint, "limit", remaining, reset_at, capped_until, updated_at '
                           "FROM rate_windows ORDER BY endpoint")) == before["rate_windows"]

    schema.upgrade(empty)  # and on to the head: read through today's models
    with Session(empty) as s, s.begin():
        # 0005: the job a worker was posting is queued again, its picture kept, its lease gone.
        requeued = s.get_one(Job, 3)
        assert (requeued.state, requeued.result_image, requeued.lease_owner) == (JobState.QUEUED, b"result-2", None)
        assert "migration 0005" in s.scalars(select(JobEvent.reason).where(JobEvent.job_id == 3)).all()[-1]
        assert {r.look_first for r in s.scalars(select(Reply))} == {False}
        # Read through the models: states, times and options come back typed.
        replied = s.scalars(select(Job).where(Job.state == JobState.REPLIED)).one()
        assert (replied.platform, replied.post_ref, replied.reply_ref) == ("x", "1003", "9000")
        assert replied.finished_at == _at(25) and replied.options == {"strength": "high"}
        alice = s.scalars(select(User).where(User.user_ref == "11")).one()
        assert (alice.banned, alice.ban_reason, alice.platform) == (True, "spam", "x")
        assert s.get_one(Post, ("x", "2001")).reason == "a retweet"
        # New rows take ids after the kept ones (PostgreSQL's sequences were moved).
        call = ApiCall(platform="x", endpoint="POST /2/tweets", status=201, cost_usd=0.01)
        reply = Reply(platform="x", in_reply_to_ref="2000", kind="refusal", text="again")
        s.add_all([call, reply])
        s.flush()
        assert (call.id, reply.id) == (3, 4)


def test_0005_downgrades_dropping_results_not_posted_and_requeueing_their_jobs(empty: Engine) -> None:
    schema.upgrade(empty)
    with Session(empty) as s, s.begin():
        post = Post(platform="x", post_ref="1", author_ref="7", author_username="ann", text="@bot", outcome=Outcome.QUEUED)
        job = Job(platform="x", post_ref="1", author_username="ann", content_image=b"p", style_image=b"s",
                  state=JobState.UPLOADING, result_image=b"r")
        s.add(post)
        s.flush()
        s.add(job)
        s.flush()
        s.add_all([
            Reply(platform="x", in_reply_to_ref="1", kind="result", text="here", job_id=job.id, alt_text="a"),
            Reply(platform="x", in_reply_to_ref="1", kind="refusal", text="how to"),
        ])

    schema.downgrade(empty, "0004")

    with empty.connect() as c:
        assert _rows(c, "SELECT kind FROM replies") == [("refusal",)]
        assert _rows(c, "SELECT state, result_image FROM jobs") == [("queued", b"r")]


def test_0004_downgrades_to_the_rows_it_came_from(empty: Engine) -> None:
    schema.upgrade(empty, "0003")
    with empty.begin() as c:
        _fill_0003(c)
    with empty.connect() as c:
        before = _dump(c)
    schema.upgrade(empty, "0004")
    with empty.begin() as c:  # a row of another platform has no place in the old tables
        _insert(c, "cursors", platform="memory", name="mentions", value="7", updated_at=_at(50))

    schema.downgrade(empty, "0003")

    with empty.connect() as c:
        after = _dump(c)
    dave = after["users"].pop()
    assert dave[:5] == ("14", "dave", False, None, 0)
    assert after == before


def test_0011_keeps_every_job_and_its_images_and_lets_them_go(empty: Engine) -> None:
    schema.upgrade(empty, "0005")
    with empty.begin() as c:
        _insert(c, "posts", platform="x", post_ref="1", author_ref="7", author_username="ann", text="@bot",
                outcome="queued", reason=None, seen_at=_at(0))
        for n, state in enumerate(["queued", "replied"], start=1):
            _insert(c, "jobs", id=n, platform="x" if n == 1 else None, post_ref="1" if n == 1 else None,
                    user_id=None, author_username="ann", state=state, priority=0, options=None, not_before=None,
                    content_image=b"photo-%d" % n, style_image=b"painting-%d" % n,
                    result_image=b"result" if state == "replied" else None, reply_ref=None, error=None, attempts=0,
                    lease_owner=None, lease_expires_at=None, progress_iteration=0, progress_total=0, render_s=None,
                    created_at=_at(n), updated_at=_at(n), started_at=None, finished_at=None)
            _insert(c, "job_events", job_id=n, from_state=None, to_state="queued", reason="q", worker=None,
                    at=_at(n))
        _insert(c, "replies", id=1, platform="x", in_reply_to_ref="1", kind="result", optional=False, text="t",
                job_id=1, alt_text="a", look_first=False, reply_ref=None, attempts=0, error=None, claimed_by=None,
                claimed_until=None, not_before=None, created_at=_at(3), sent_at=None)
    schema.upgrade(empty, "0010")
    with empty.connect() as c:
        before = _rows(c, "SELECT id, state, content_image, style_image, result_image FROM jobs ORDER BY id")

    schema.upgrade(empty, "0011")  # SQLite copies the jobs table, which job_events and replies refer to

    with empty.connect() as c:
        assert _rows(c, "SELECT id, state, content_image, style_image, result_image FROM jobs ORDER BY id") == before
        assert _rows(c, "SELECT id, style_painting, images_deleted_at FROM jobs ORDER BY id") == [
            (1, None, None), (2, None, None)]
        assert _rows(c, "SELECT job_id FROM job_events ORDER BY job_id") == [(1,), (2,)]
        assert _rows(c, "SELECT job_id FROM replies") == [(1,)]
    with Session(empty) as s, s.begin():  # a job may name a painting, and lose its images
        s.get_one(Job, 1).style_image, s.get_one(Job, 1).style_painting = None, "the scream"
        s.get_one(Job, 2).content_image = s.get_one(Job, 2).style_image = s.get_one(Job, 2).result_image = None

    schema.downgrade(empty, "0010")

    with empty.connect() as c:
        # The job to paint from a referenced painting has nothing to paint with: it failed, saying so.
        assert _rows(c, "SELECT id, state, content_image, style_image, result_image FROM jobs ORDER BY id") == [
            (1, "failed", b"photo-1", b"", None), (2, "replied", b"", b"", None)]
        assert "migration 0011 undone" in _rows(c, "SELECT reason FROM job_events WHERE job_id = 1 ORDER BY id")[-1][0]
    schema.upgrade(empty)


def test_the_models_match_the_migrations(db_url: str) -> None:
    """What the code expects is what the migrations build (nothing autogenerate would add)."""
    engine = open_engine(db_url)
    try:
        with engine.connect() as c:
            context = MigrationContext.configure(c, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_0007_downgrades_keeping_web_jobs_without_their_tokens(empty: Engine) -> None:
    schema.upgrade(empty)
    with Session(empty) as s, s.begin():
        s.add(Job(content_image=b"p", style_image=b"s", token_hash="ab" * 32))
        s.add(Post(platform="x", post_ref="1", author_ref="7", author_username="ann", text="@bot", outcome=Outcome.QUEUED))
        s.flush()
        s.add(Job(platform="x", post_ref="1", author_username="ann", content_image=b"p", style_image=b"s"))
        s.flush()
        s.add(JobEvent(job_id=1, from_state=None, to_state=JobState.QUEUED, reason="queued"))
    with empty.begin() as c:
        _insert(c, "api_keys", name="app", key_hash="cd" * 32, per_day=5, priority=0, created_at=_at(0))

    schema.downgrade(empty, "0006")
    with empty.connect() as c:
        assert _rows(c, "SELECT id, platform FROM jobs ORDER BY id") == [(1, None), (2, "x")]
        assert _rows(c, "SELECT count(*) FROM job_events") == [(1,)]
    schema.upgrade(empty)
    with empty.connect() as c:
        assert _rows(c, "SELECT token_hash FROM jobs ORDER BY id") == [(None,), (None,)]
        assert _rows(c, "SELECT count(*) FROM api_keys") == [(0,)]


def test_0010_makes_room_for_bluesky_uris_and_handles_and_downgrades_only_without_them(empty: Engine) -> None:
    uri = "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3l6oveex3ii2l" + "x" * 300
    handle = "a-rather-long-handle-for-someone." + "sub." * 40 + "bsky.social"
    schema.upgrade(empty)
    with Session(empty) as s, s.begin():
        s.add(Post(platform="bluesky", post_ref=uri, author_ref="did:plc:" + "y" * 200, author_username=handle,
                   text="@forger", outcome=Outcome.QUEUED))
    with empty.connect() as c:
        assert _rows(c, "SELECT post_ref, author_username FROM posts") == [(uri, handle)]

    with pytest.raises(RuntimeError, match="posts.post_ref holds values of"):
        schema.downgrade(empty, "0009")
    with Session(empty) as s, s.begin():
        s.execute(text("DELETE FROM posts"))
    schema.downgrade(empty, "0009")
    assert schema.current(empty) == "0009"
    schema.upgrade(empty)
    assert schema.current(empty) == schema.head()
