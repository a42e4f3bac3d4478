"""How long Forger keeps what it stores: people's photos and results, and the ledger's detail.

Photos and results are personal data: a finished job's images are deleted ``images_days`` after
it finished (``delete_images``); its row stays, for the history and the quotas. Ledger and
job-event rows older than ``rollup_days`` are summed into one row per day (``storage.ledger.roll_up``,
``storage.jobs.roll_up_events``). ``bot.retention.prune`` runs it all, from ``forger db prune`` and
daily from the poller's scheduler.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from storage.models import Job, JobState, utcnow

FINISHED = (JobState.REPLIED, JobState.FAILED, JobState.CANCELLED)


def delete_images(session: Session, *, finished_before: datetime, now: datetime | None = None) -> int:
    """Delete the photos and results of jobs finished before ``finished_before``; how many jobs.

    A job not finished (waiting, painting, its result still to post) keeps its images, however old.
    """
    done = session.execute(
        update(Job)
        .where(Job.state.in_(FINISHED), Job.finished_at < finished_before, Job.images_deleted_at.is_(None))
        .values(content_image=None, style_image=None, result_image=None, images_deleted_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(done.rowcount or 0)


def image_bytes(session: Session) -> int:
    """The bytes of every image the jobs hold: what the retention keeps in bounds."""
    sizes = (func.coalesce(func.length(column), 0) for column in (Job.content_image, Job.style_image, Job.result_image))
    total = session.scalar(select(func.coalesce(func.sum(sum(sizes)), 0)))  # type: ignore[arg-type]
    return int(total or 0)


def gallery_copies(session: Session, sizes: set[int], *, after: int = 0, batch: int = 200) -> list[tuple[int, bytes]]:
    """(id, style image) of up to ``batch`` jobs after job ``after`` whose style image is one of
    ``sizes`` bytes long: the candidates for being a copy of a gallery painting (stored before
    paintings were referenced)."""
    if not sizes:
        return []
    query = (
        select(Job.id, Job.style_image)
        .where(Job.id > after, Job.style_painting.is_(None), Job.style_image.is_not(None),
               or_(*(func.length(Job.style_image) == size for size in sorted(sizes))))
        .order_by(Job.id)
        .limit(batch)
    )
    return [(job_id, data) for job_id, data in session.execute(query) if data is not None]


def refer(session: Session, job_id: int, painting: str) -> None:
    """Job ``job_id``'s style is the gallery painting ``painting``: its copy is dropped."""
    session.execute(
        update(Job).where(Job.id == job_id).values(style_image=None, style_painting=painting)
        .execution_options(synchronize_session=False)
    )
