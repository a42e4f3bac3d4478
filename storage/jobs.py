"""The render queue: enqueue a request, claim the oldest, finish it one way or the other."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.errors import IllegalTransition
from storage.models import Job, JobState, utcnow

# Where a job may go from each state; anything else is a bug worth raising on.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RENDERING, JobState.FAILED}),
    JobState.RENDERING: frozenset({JobState.REPLIED, JobState.FAILED, JobState.QUEUED}),
    JobState.REPLIED: frozenset(),
    JobState.FAILED: frozenset(),
}


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs to do a job, detached from any session."""

    id: int
    tweet_id: str
    author_username: str
    content_image: bytes
    style_image: bytes
    attempts: int


def enqueue(
    session: Session,
    *,
    tweet_id: str,
    author_id: str,
    author_username: str,
    content_image: bytes,
    style_image: bytes,
) -> Job:
    """Add a render request to the back of the queue."""
    job = Job(
        tweet_id=tweet_id,
        author_id=author_id,
        author_username=author_username,
        content_image=content_image,
        style_image=style_image,
        state=JobState.QUEUED,
    )
    session.add(job)
    session.flush()
    return job


def claim_next(session: Session) -> ClaimedJob | None:
    """Move the oldest queued job to rendering and return it, or None when the queue is empty.

    The conditional UPDATE is the claim: if another worker took the job between our SELECT and
    our UPDATE, no row matches and we try the next one.
    """
    while True:
        job_id = session.scalar(
            select(Job.id).where(Job.state == JobState.QUEUED).order_by(Job.id).limit(1)
        )
        if job_id is None:
            return None
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == JobState.QUEUED)
            .values(state=JobState.RENDERING, attempts=Job.attempts + 1, started_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 1:
            job = session.get_one(Job, job_id, populate_existing=True)
            return ClaimedJob(
                id=job.id,
                tweet_id=job.tweet_id,
                author_username=job.author_username,
                content_image=job.content_image,
                style_image=job.style_image,
                attempts=job.attempts,
            )


def _move(session: Session, job_id: int, wanted: JobState) -> Job:
    job = session.get_one(Job, job_id)
    if wanted not in TRANSITIONS[job.state]:
        raise IllegalTransition(job_id, job.state.value, wanted.value)
    job.state = wanted
    return job


def mark_replied(session: Session, job_id: int, *, reply_tweet_id: str, result_image: bytes) -> None:
    """The result is posted: record the reply so it is never posted again."""
    job = _move(session, job_id, JobState.REPLIED)
    job.reply_tweet_id = reply_tweet_id
    job.result_image = result_image
    job.error = None
    job.finished_at = utcnow()


def mark_failed(session: Session, job_id: int, *, error: str) -> None:
    """The job will not be done; ``error`` says why (it is shown to admins)."""
    job = _move(session, job_id, JobState.FAILED)
    job.error = error
    job.finished_at = utcnow()


def requeue(session: Session, job_id: int, *, error: str) -> None:
    """Put a job back in the queue after a transient failure, keeping the error for the record."""
    job = _move(session, job_id, JobState.QUEUED)
    job.error = error


def get(session: Session, job_id: int) -> Job:
    return session.get_one(Job, job_id)


def by_tweet(session: Session, tweet_id: str) -> Job | None:
    return session.scalar(select(Job).where(Job.tweet_id == tweet_id))


def counts(session: Session) -> dict[JobState, int]:
    """How many jobs are in each state (every state present, zero where none)."""
    found: dict[JobState, int] = {state: 0 for state in JobState}
    for job_state, count in session.execute(select(Job.state, func.count()).group_by(Job.state)):
        found[job_state] = count
    return found
