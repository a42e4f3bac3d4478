"""The tables: users, posts seen, render jobs and their history, replies owed, cursors, the API ledger.

Nothing here belongs to one platform: a row names its ``platform`` (its name in the registry) and
the platform's own ids as opaque strings (``post_ref``, ``user_ref``). A job painted for a web
upload has no origin post at all, so a job's origin columns are nullable.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
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
    """What the bot made of a post that mentions it."""

    QUEUED = "queued"  # a render job was created
    REFUSED = "refused"  # answered with a how-to or a reason, no job
    IGNORED = "ignored"  # no reply at all (the bot's own posts, reposts)


class JobState(str, enum.Enum):
    """Where a job is in its life; ``storage.jobs.TRANSITIONS`` says where it may go next."""

    QUEUED = "queued"  # waiting for a worker
    RENDERING = "rendering"  # a worker holds its lease and paints
    UPLOADING = "uploading"  # painted; its result waits in the outbox (``Reply.job_id``) to be posted
    REPLIED = "replied"  # the result is posted and recorded (or kept, when no post asked for it)
    FAILED = "failed"  # given up on, with the reason in ``error``
    CANCELLED = "cancelled"  # stopped by an admin


PLATFORM = String(32)  # a platform's name in the registry, e.g. "memory"
REF = String(512)  # an id given by a platform (a post's, a user's), kept as the platform wrote it (up to a Bluesky at:// URI)
NAME = String(253)  # a user's name on a platform: an X username, or a Bluesky handle (a domain name)


class User(Base):
    """Someone who has written to the bot on one platform: bans and priority are set by admins."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(PLATFORM)
    user_ref: Mapped[str] = mapped_column(REF)  # the user's id on the platform
    username: Mapped[str] = mapped_column(NAME)
    banned: Mapped[bool] = mapped_column(Boolean, default=False)
    ban_reason: Mapped[str | None] = mapped_column(Text)
    # Jobs of users with a higher priority are claimed first; 0 is everyone else.
    priority: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("platform", "user_ref", name="uq_users_platform_user_ref"),)


class Post(Base):
    """Every post naming the bot that the poller has seen, once: what makes a post seen again a no-op."""

    __tablename__ = "posts"

    platform: Mapped[str] = mapped_column(PLATFORM, primary_key=True)
    post_ref: Mapped[str] = mapped_column(REF, primary_key=True)
    author_ref: Mapped[str] = mapped_column(REF)
    author_username: Mapped[str] = mapped_column(NAME)
    text: Mapped[str] = mapped_column(Text)
    outcome: Mapped[Outcome] = mapped_column(_enum(Outcome))
    reason: Mapped[str | None] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_posts_author", "platform", "author_ref"),)


class Job(Base):
    """A render request: the picture and the painting, and what became of them.

    Its origin (``platform``, ``post_ref``: the post that asked, answered with the result) is
    empty for a request that came from no post. The images live in the database so that a worker
    anywhere needs nothing but its URL; they are deferred so that listing jobs never loads
    megabytes of pixels. A gallery painting is not copied: ``style_painting`` names it, and the
    worker reads it from the gallery. Photos and results are personal data, kept for a while
    (``retention.images_days``): then they are deleted and ``images_deleted_at`` says when.
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str | None] = mapped_column(PLATFORM)
    post_ref: Mapped[str | None] = mapped_column(REF)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_jobs_user_id"))
    author_username: Mapped[str | None] = mapped_column(NAME)  # as the user was called when asking
    state: Mapped[JobState] = mapped_column(_enum(JobState), default=JobState.QUEUED)
    priority: Mapped[int] = mapped_column(default=0)
    # What the user asked for besides the images (strength, colours, faces): the bot's JSON.
    options: Mapped[dict[str, object] | None] = mapped_column(JSON)
    # A job given back after a transient failure waits until then (backoff), not claimed at once.
    not_before: Mapped[datetime | None]
    content_image: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    style_image: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)  # a painting sent as a photo
    style_painting: Mapped[str | None] = mapped_column(String(128))  # or a gallery painting's key
    result_image: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    images_deleted_at: Mapped[datetime | None]  # when the retention deleted the images
    reply_ref: Mapped[str | None] = mapped_column(REF)  # the post that carried the result
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
    # A request from the web: the SHA-256 of the unguessable token its URLs carry (the token itself
    # is only ever in the caller's hands). None for a job asked for by a post.
    token_hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        # One job per post; a job with no origin (both NULL) is checked against nothing.
        UniqueConstraint("platform", "post_ref", name="uq_jobs_post"),
        ForeignKeyConstraint(["platform", "post_ref"], ["posts.platform", "posts.post_ref"], name="fk_jobs_post"),
        # The claim query: the best queued job, and leases to reclaim.
        Index("ix_jobs_claim", "state", "priority", "id"),
        Index("ix_jobs_user_created", "user_id", "created_at"),
        Index("ix_jobs_token_hash", "token_hash", unique=True),
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


class JobEventDay(Base):
    """Job transitions of one day, counted: what old ``JobEvent`` rows are rolled up into."""

    __tablename__ = "job_event_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    to_state: Mapped[JobState] = mapped_column(_enum(JobState), primary_key=True)
    events: Mapped[int] = mapped_column(default=0)


class Reply(Base):
    """A post the bot owes someone (a result, a how-to, a failure notice), sent by the outbox.

    Written in the same transaction as the decision that calls for it, so that no answer is lost
    when posting fails; ``reply_ref`` is set once the platform has accepted it. A result names
    its job, whose painted picture it carries.
    """

    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(PLATFORM)
    in_reply_to_ref: Mapped[str] = mapped_column(REF)
    kind: Mapped[str] = mapped_column(String(32))
    # Optional replies (acknowledgements) are the first thing dropped when the budget runs low.
    optional: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str] = mapped_column(Text)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", name="fk_replies_job_id"))  # a result's
    alt_text: Mapped[str | None] = mapped_column(Text)  # what the picture shows, for screen readers
    # An earlier attempt may have posted it already (a job painted or tried before): look first.
    look_first: Mapped[bool] = mapped_column(Boolean, default=False)
    # Tried until then however many attempts it takes (a painted picture waits out an outage);
    # None: ``max_attempts`` decides. Set at its first failure, cleared when it is given up.
    deliver_until: Mapped[datetime | None]
    reply_ref: Mapped[str | None] = mapped_column(REF)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # Who is posting it now, until when (``storage.replies.claim``): two deliverers never both post it.
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None]
    not_before: Mapped[datetime | None]  # after a failed post: the platform's reset time, or a backoff
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_replies_in_reply_to", "platform", "in_reply_to_ref"),
        Index("ix_replies_job_id", "job_id"),
    )


class ApiKey(Base):
    """A key to the web API (``forger api-key``): its own daily quota and priority. Only the key's
    SHA-256 is kept; the key is shown once, when it is made. Its caller is a ``users`` row of
    platform "web" (user_ref "key:<id>"), so bans and the queue limit are the bot's own."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    key_hash: Mapped[str] = mapped_column(String(64))
    per_day: Mapped[int]  # renders in any 24 hours
    priority: Mapped[int] = mapped_column(default=0)  # its jobs' priority (higher first)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),)


class Cursor(Base):
    """A named position in a platform's stream, e.g. the newest mention handled."""

    __tablename__ = "cursors"

    platform: Mapped[str] = mapped_column(PLATFORM, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PlatformSetting(Base):
    """A value a platform adapter learnt and keeps across restarts (e.g. which API dialect works).

    Keyed by ``platform`` and the adapter's own ``key``: the core never reads these.
    """

    __tablename__ = "platform_settings"

    platform: Mapped[str] = mapped_column(PLATFORM, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ApiCall(Base):
    """One request made to a platform's API, with its estimated cost: the ledger the budget is kept by."""

    __tablename__ = "api_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(PLATFORM)
    endpoint: Mapped[str] = mapped_column(String(64))  # the platform's name for the call
    status: Mapped[int | None]  # HTTP status; None when the platform could not be reached
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ApiCallDay(Base):
    """One day's calls to one endpoint, summed: what old ``ApiCall`` rows are rolled up into."""

    __tablename__ = "api_call_days"

    platform: Mapped[str] = mapped_column(PLATFORM, primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    calls: Mapped[int] = mapped_column(default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)


class BilledRead(Base):
    """A resource a platform served and billed on ``day`` (UTC): a platform that bills each
    resource once a day (X does) is not billed again for it that day. ``author_ref`` is whose
    post it was, so that each author's share of the spend can be kept in bounds."""

    __tablename__ = "billed_reads"

    platform: Mapped[str] = mapped_column(PLATFORM, primary_key=True)
    resource_ref: Mapped[str] = mapped_column(REF, primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # "2026-12-02", UTC
    author_ref: Mapped[str | None] = mapped_column(REF, index=True)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Alert(Base):
    """Something the admin must know (mentions lost beyond a platform's reach, a budget stop)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str | None] = mapped_column(PLATFORM)
    kind: Mapped[str] = mapped_column(String(32))  # e.g. "mention_gap"
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class RateWindow(Base):
    """An endpoint's rate-limit window as its platform last reported it."""

    __tablename__ = "rate_windows"

    platform: Mapped[str] = mapped_column(PLATFORM, primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(64), primary_key=True)
    limit: Mapped[int]
    remaining: Mapped[int]
    reset_at: Mapped[datetime]
    # Set when the platform said a usage cap (not a window) was hit: no such call until then.
    capped_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AdminAccount(Base):
    """Who may log in to the admin pages: a name and the scrypt hash of its password, never the password."""

    __tablename__ = "admin_accounts"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class AdminSession(Base):
    """A login, kept on the server: the cookie holds a random token, the row only its SHA-256.

    Deleting the row (logout) ends it; so does a new password, whose stamp it no longer carries.
    """

    __tablename__ = "admin_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    password_stamp: Mapped[str] = mapped_column(String(64))  # of the password hash it was made under
    csrf: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))  # where the login came from
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AdminLogin(Base):
    """One login attempt, right or wrong: what slows guessing down and what the admin is shown."""

    __tablename__ = "admin_logins"

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    ok: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime]

    __table_args__ = (
        Index("ix_admin_logins_address_at", "address", "at"),
        Index("ix_admin_logins_account_at", "account", "at"),
    )
