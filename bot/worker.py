"""The render worker: take the oldest job, paint it, post it as a reply, record the reply.

A job whose images cannot be painted fails at once and the user is told why; a failure to reach
X puts the job back in the queue until it has been tried ``max_attempts`` times.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.orm import Session, sessionmaker

from bot.errors import XError
from bot.gateway import XGateway
from bot.rendering import ProgressFn, Renderer
from model.errors import ModelError
from storage import jobs, replies

log = logging.getLogger(__name__)

RESULT_TEXT = "Here is your picture, painted in the style of your painting."
UNREADABLE = "Sorry, I couldn't paint that: {reason}. Please send two ordinary photos (JPEG or PNG)."
BROKEN = "Sorry, something went wrong while painting your picture. The team has been told."
UNDELIVERABLE = "Sorry, I painted your picture but couldn't post it on X. Please try again later."


def work_once(
    sessions: sessionmaker[Session],
    gateway: XGateway,
    renderer: Renderer,
    *,
    max_attempts: int,
    progress: ProgressFn | None = None,
) -> int | None:
    """Do the oldest queued job; returns its id, or None when the queue was empty."""
    with sessions.begin() as session:
        job = jobs.claim_next(session)
    if job is None:
        return None
    log.info("job %d: rendering tweet %s by @%s (attempt %d)", job.id, job.tweet_id, job.author_username, job.attempts)

    started = time.monotonic()
    try:
        result = renderer.render(job.content_image, job.style_image, progress)
    except ModelError as exc:
        _fail(sessions, job.id, job.tweet_id, str(exc), UNREADABLE.format(reason=_clip(str(exc), 120)))
        return job.id
    except Exception as exc:  # a crash in the renderer must not take the worker down with it
        log.exception("job %d: renderer crashed", job.id)
        _fail(sessions, job.id, job.tweet_id, f"renderer crashed: {exc!r}", BROKEN)
        return job.id
    log.info("job %d: rendered in %.1f s", job.id, time.monotonic() - started)

    try:
        media_id = gateway.upload_image(result, content_type="image/jpeg")
        reply_id = gateway.reply(job.tweet_id, RESULT_TEXT, media_ids=(media_id,))
    except XError as exc:
        if exc.transient and job.attempts < max_attempts:
            log.warning("job %d: X failed (%s); back in the queue", job.id, exc)
            with sessions.begin() as session:
                jobs.requeue(session, job.id, error=str(exc))
        else:
            _fail(sessions, job.id, job.tweet_id, str(exc), UNDELIVERABLE)
        return job.id

    with sessions.begin() as session:
        jobs.mark_replied(session, job.id, reply_tweet_id=reply_id, result_image=result)
    log.info("job %d: replied with tweet %s", job.id, reply_id)
    return job.id


def _fail(sessions: sessionmaker[Session], job_id: int, tweet_id: str, error: str, notice: str) -> None:
    """Mark the job failed and owe its author one short reply saying so, in one transaction."""
    log.warning("job %d failed: %s", job_id, error)
    with sessions.begin() as session:
        jobs.mark_failed(session, job_id, error=error)
        replies.owe(session, in_reply_to_tweet_id=tweet_id, kind="failure", text=notice)


def _clip(text: str, limit: int) -> str:
    """Keep a reason short enough for a tweet."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
