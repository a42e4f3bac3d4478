"""The tables: users, mentions seen, render jobs and their history, replies owed, cursors, the X API ledger."""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Dialect, Enum, Float, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Timezone-aware now; stored as UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime that is always timezone-aware UTC in Python, whatever the database keeps.

    SQLite has no time zones and hands back naive values; comparing those with aware ones raises.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _enum(cls: type[enum.Enum]) -> Enum:
    """Store an enum by its value as a plain string column (portable, readable in SQL)."""
    return Enum(cls, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}


class Outcome(str, enum.Enum):
    """What the bot made of a mention."""

    QUEUED = "queued"  # a render job was created
    REFUSED = "refused"  # answered with a how-to or a reason, no job
    IGNORED = "ignored"  # no reply at all (the bot's own tweets, retweets)


class JobState(str, enum.Enum):
    """Where a job is in its life; ``storage.jobs.TRANSITIONS`` says where it may go next."""

    QUEUED = "queued"  # waiting for a worker
    RENDERING = "rendering"  # a worker holds its lease and paints
    UPLOADING = "uploading"  # painted; the worker is posting the reply
    REPLIED = "replied"  # the reply is on X and recorded
    FAILED = "failed"  # given up on, with the reason in ``error``
    CANCELLED = "cancelled"  # stopped by an admin


class User(Base):
    """Someone who has written to the bot: bans and priority are set by admins."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # X user id
    username: Mapped[str] = mapped_column(String(64))
    banned: Mapped[bool] = mapped_column(Boolean, default=False)
    ban_reason: Mapped[str | None] = mapped_column(Text)
    # Jobs of users with a higher priority are claimed first; 0 is everyone else.
    priority: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Mention(Base):
    """Every mention the poller has seen, once: the record that makes a re-seen tweet a no-op."""

    __tablename__ = "mentions"

    tweet_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    author_id: Mapped[str] = mapped_column(String(32))
    author_username: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    outcome: Mapped[Outcome] = mapped_column(_enum(Outcome))
    reason: Mapped[str | None] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    """A render request: the picture and the painting, and what became of them.

    The images live in the database so that a worker anywhere needs nothing but its URL; they are
    deferred so that listing jobs never loads megabytes of pixels.
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    tweet_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("mentions.tweet_id"), unique=True
    )
    author_id: Mapped[str] = mapped_column(String(32))
    author_username: Mapped[str] = mapped_column(String(64))
    state: Mapped[JobState] = mapped_column(_enum(JobState), default=JobState.QUEUED)
    priority: Mapped[int] = mapped_column(default=0)
    # What the user asked for besides the images (strength, colours, faces): the bot's JSON.
    options: Mapped[dict[str, object] | None] = mapped_column(JSON)
    # A job given back after a transient failure waits until then (backoff), not claimed at once.
    not_before: Mapped[datetime | None]
    content_image: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    style_image: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    result_image: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    reply_tweet_id: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    # The worker holding the job and until when; a lapsed lease means the worker died.
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    progress_iteration: Mapped[int] = mapped_column(default=0)
    progress_total: Mapped[int] = mapped_column(default=0)
    render_s: Mapped[float | None] = mapped_column(Float)  # seconds the last render took
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None]  # last claimed
    finished_at: Mapped[datetime | None]

    mention: Mapped[Mention] = relationship()

    __table_args__ = (
        # The claim query: the best queued job, and leases to reclaim.
        Index("ix_jobs_claim", "state", "priority", "id"),
        Index("ix_jobs_author_created", "author_id", "created_at"),
    )


class JobEvent(Base):
    """One transition of a job, with when and why: a job's history, read back in order."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    from_state: Mapped[JobState | None] = mapped_column(_enum(JobState))
    to_state: Mapped[JobState] = mapped_column(_enum(JobState))
    reason: Mapped[str] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Reply(Base):
    """A text reply the bot owes someone (a how-to, a failure notice), sent by ``deliver``.

    Written in the same transaction as the decision that calls for it, so that no answer is lost
    when posting fails; ``reply_tweet_id`` is set once X has accepted it.
    """

    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    in_reply_to_tweet_id: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    # Optional replies (acknowledgements) are the first thing dropped when the budget runs low.
    optional: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str] = mapped_column(Text)
    reply_tweet_id: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # Who is posting it now, until when (``storage.replies.claim``): two deliverers never both post it.
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None]
    not_before: Mapped[datetime | None]  # after a failed post: X's reset time, or a backoff
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class Cursor(Base):
    """A named position in a stream, e.g. the newest mention id handled."""

    __tablename__ = "cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ApiCall(Base):
    """One request made to X, with its estimated cost: the ledger the budget is kept by."""

    __tablename__ = "api_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(64))  # e.g. "POST /2/tweets"
    status: Mapped[int | None]  # HTTP status; None when X could not be reached
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class RateWindow(Base):
    """An endpoint's rate-limit window as X last reported it (``x-rate-limit-*`` headers)."""

    __tablename__ = "rate_windows"

    endpoint: Mapped[str] = mapped_column(String(64), primary_key=True)
    limit: Mapped[int]
    remaining: Mapped[int]
    reset_at: Mapped[datetime]
    # Set when X said a usage cap (not a window) was hit: no such call until then.
    capped_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
