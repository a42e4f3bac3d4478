"""The render worker: claim the best job, paint it, and owe its result to the outbox.

The worker holds each job under a lease and renews it from the render's progress callback; if
the lease is lost (the worker stalled past it, or an admin cancelled the job) the render stops.
A job whose images cannot be painted fails at once and its author is told why. A picture painted
is kept with its job, and its result owed in the same transaction: the outbox (``bot.replies``)
posts it. So a worker needs the database and nothing else: no platform, no credentials.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot import results
from bot.compose import addressed
from bot.gallery import Gallery
from bot.options import RenderOptions
from bot.rendering import ProgressFn, Renderer
from model.errors import ModelError
from model.settings import Progress
from storage import jobs, replies
from storage.errors import LeaseLost

log = logging.getLogger(__name__)

# The detail (the decoder's words) goes to the log and the job's error, never into the post.
UNREADABLE = (
    "Sorry, I couldn't paint that: one of the pictures would not open (it may be damaged, or too big). "
    "Please send two ordinary photos (JPEG or PNG)."
)
BROKEN = "Sorry, something went wrong while painting your picture. The team has been told."


def worker_name() -> str:
    """A name unique to this worker process, readable in the job history: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Lease:
    """Who works and for how long a claim holds without renewal."""

    worker: str
    lease_s: float
    max_attempts: int


class Stopping(Exception):
    """The worker process is stopping (SIGTERM, a deploy): the render in hand is given up."""


class _Heartbeat:
    """The render's progress callback: stores progress and renews the lease, a few times a lease;
    stops the render when the process is stopping."""

    def __init__(
        self, sessions: sessionmaker[Session], job_id: int, lease: Lease, progress: ProgressFn | None,
        stop: threading.Event | None,
    ) -> None:
        self.sessions, self.job_id, self.lease, self.progress, self.stop = sessions, job_id, lease, progress, stop
        self.every_s = lease.lease_s / 4
        self.last = time.monotonic()

    def __call__(self, p: Progress) -> None:
        if self.stop is not None and self.stop.is_set():
            raise Stopping
        if self.progress:
            self.progress(p)
        if time.monotonic() - self.last >= self.every_s or p.iteration == p.total:
            try:
                self.beat(p.iteration, p.total)
            except OperationalError as exc:
                # The database is out of reach for a moment: paint on. The lease lasts four
                # beats; if it lapses meanwhile, the next beat finds the job taken and stops.
                log.warning("job %d: lease not renewed, the database is out of reach: %s", self.job_id, exc)

    def beat(self, iteration: int | None = None, total: int | None = None) -> None:
        with self.sessions.begin() as session:  # raises LeaseLost, which stops the render
            jobs.heartbeat(session, self.job_id, worker=self.lease.worker, lease_s=self.lease.lease_s,
                           iteration=iteration, total=total)
        self.last = time.monotonic()


def work_once(
    sessions: sessionmaker[Session],
    renderer: Renderer,
    lease: Lease,
    *,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    gallery: Gallery,
) -> int | None:
    """Do the best queued job; returns its id, or None when nothing was due.

    When ``stop`` is set (the process is stopping) a render in hand is given up and its job goes
    back to the queue, its attempt given back. ``gallery`` credits the paintings.
    """
    with sessions.begin() as session:
        # Jobs whose worker died go back to the queue; those out of attempts fail, and their
        # authors are told, as they are when a worker fails a job itself.
        for gone in jobs.sweep(session, max_attempts=lease.max_attempts):
            if gone.result_image is not None:  # painted: the outbox looks for the picture before this
                _tell(session, gone.platform, gone.post_ref, gone.author_username, results.UNDELIVERABLE,
                      kind=results.APOLOGY)
            else:
                _tell(session, gone.platform, gone.post_ref, gone.author_username, BROKEN)
        job = jobs.claim_next(session, worker=lease.worker, lease_s=lease.lease_s, max_attempts=lease.max_attempts)
    if job is None:
        return None
    log.info("job %d: post %s:%s by @%s, attempt %d", job.id, job.platform, job.post_ref, job.author_username,
             job.attempts)
    try:
        _paint(sessions, renderer, lease, job, progress, stop, gallery)
    except LeaseLost as exc:
        log.warning("job %d: stopped, %s", job.id, exc)
    return job.id


def _paint(
    sessions: sessionmaker[Session], renderer: Renderer, lease: Lease,
    job: jobs.ClaimedJob, progress: ProgressFn | None, stop: threading.Event | None, gallery: Gallery,
) -> None:
    result, render_s = job.result_image, job.render_s
    if result is None:
        heartbeat = _Heartbeat(sessions, job.id, lease, progress, stop)
        started = time.monotonic()
        try:
            options = RenderOptions.from_json(job.options)
            style = style_of(job, gallery)
            if job.content_image is None or style is None:
                what = "its photos were deleted" if job.content_image is None else f"no painting {job.style_painting!r}"
                _fail(sessions, lease, job, f"nothing to paint: {what} (gallery or retention)", BROKEN)
                return
            result = renderer.render(job.content_image, style, heartbeat, options=options)
        except ModelError as exc:
            _fail(sessions, lease, job, str(exc), UNREADABLE)
            return
        except LeaseLost:
            raise
        except Stopping:
            with sessions.begin() as session:
                jobs.release(session, job.id, worker=lease.worker, error="the worker stopped (a restart or deploy)",
                             max_attempts=lease.max_attempts, counts=False)
            log.warning("job %d: the worker is stopping; the job is back in the queue", job.id)
            return
        except Exception as exc:  # a crash in the renderer must not take the worker down with it
            log.exception("job %d: renderer crashed", job.id)
            _fail(sessions, lease, job, f"renderer crashed: {exc!r}", BROKEN)
            return
        render_s = time.monotonic() - started
        log.info("job %d: rendered in %.1f s", job.id, render_s)
    with sessions.begin() as session:
        jobs.mark_painted(session, job.id, worker=lease.worker, result_image=result, render_s=render_s or 0.0)
        if job.platform is None or job.post_ref is None:  # asked for by no post: the result is kept
            jobs.mark_posted(session, job.id, reply_ref=None)
        else:
            results.owe(session, job, gallery=gallery)
    log.info("job %d: painted; its result is in the outbox", job.id)


def style_of(job: jobs.ClaimedJob, gallery: Gallery) -> bytes | None:
    """The style image of ``job``: its own, or the gallery painting it names (None if the gallery
    has it no more)."""
    if job.style_image is not None:
        return job.style_image
    painting = gallery.named(job.style_painting) if job.style_painting is not None else None
    return painting.image() if painting is not None else None


def _fail(sessions: sessionmaker[Session], lease: Lease, job: jobs.ClaimedJob, error: str, notice: str | None) -> None:
    """Mark the job failed and owe its author one short reply saying so (unless ``notice`` is None)."""
    log.warning("job %d failed: %s", job.id, error)
    with sessions.begin() as session:
        jobs.mark_failed(session, job.id, worker=lease.worker, error=error)
        if notice is not None:
            _tell(session, job.platform, job.post_ref, job.author_username, notice)


def _tell(
    session: Session, platform: str | None, post_ref: str | None, username: str | None, notice: str,
    *, kind: str = "failure",
) -> None:
    """Owe the post that asked for a job a short reply (a job asked for by no post has nobody to tell)."""
    if platform is not None and post_ref is not None:
        replies.owe(session, platform=platform, in_reply_to_ref=post_ref, kind=kind,
                    text=addressed(username or "", notice))

