"""A painted picture's result: the reply that carries it, owed by the worker, posted by the outbox.

The picture goes out as a JPEG that fits a photo limit, with alt text saying what it is and the
gallery credit when the style was a gallery painting (X also labels it as made with AI). A job
painted or tried before may have been posted by an attempt that died before recording it: its
result is owed with ``look_first``, and the outbox looks among the bot's replies to the post
before posting it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import compose
from bot.gallery import Gallery
from bot.platform import Image
from storage import jobs, replies
from storage.models import Job, Reply

KIND = "result"
UNDELIVERABLE = "Sorry, I painted your picture but couldn't post it. Please try again later."


def owe(session: Session, job: jobs.ClaimedJob, *, gallery: Gallery) -> Reply:
    """Owe @author's post the result of ``job`` (painted, ``storage.jobs.mark_painted``)."""
    assert job.platform is not None and job.post_ref is not None, "a job from no post has no result to post"
    painting = gallery.by_image(job.style_image)
    return replies.owe(
        session, platform=job.platform, in_reply_to_ref=job.post_ref, kind=KIND,
        text=compose.result_text(painting, username=job.author_username or "", number=job.id),
        job_id=job.id, alt_text=compose.alt_text(painting),
        # A picture kept from an earlier attempt may have been posted by it (an admin's retry
        # starts the attempts again, not the picture).
        look_first=job.attempts > 1 or job.result_image is not None,
    )


def painted(session: Session, reply: Reply) -> bytes | None:
    """The painted picture a reply owed carries (its job's); None for a text."""
    if reply.job_id is None:
        return None
    data = session.scalar(select(Job.result_image).where(Job.id == reply.job_id))
    if data is None:
        raise ValueError(f"reply {reply.id} carries job {reply.job_id}'s result, which was not painted")
    return data


def picture(reply: Reply, painted: bytes | None, *, max_bytes: int = compose.MAX_PHOTO_BYTES) -> Image | None:
    """The image to post with ``reply``: its ``painted`` picture as a JPEG that fits in
    ``max_bytes`` (the platform's limit), and its alt text (no database is held while the
    picture is encoded)."""
    if painted is None:
        return None
    return Image(compose.fit_jpeg(painted, max_bytes), alt_text=reply.alt_text or "")
