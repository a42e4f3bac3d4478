"""A painted picture's result: the reply that carries it, owed by the worker, posted by the outbox.

The picture goes out as a JPEG that fits a photo limit, with alt text saying what it is and the
gallery credit when the style was a gallery painting (X also labels it as made with AI). A job
painted or tried before may have been posted by an attempt that died before recording it: its
result is owed with ``look_first``, and the outbox looks among the bot's replies to the post
before posting it. A result given up on is apologised for (``APOLOGY``), unless the outbox finds
it posted after all (a last attempt X took although the bot stopped waiting): then the result is
recorded as posted and the apology dropped (``posted_after_all``).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import compose
from bot.gallery import Gallery
from bot.platform import Image, Limits
from storage import jobs, replies
from storage.models import Job, JobState, Reply

KIND = "result"
APOLOGY = "undelivered"  # the kind of the notice that a painted picture could not be posted
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


def apologises(reply: Reply) -> bool:
    """Whether ``reply`` says a painted picture could not be posted (owed before the ``APOLOGY``
    kind, such a notice was a "failure" with the same words)."""
    return reply.kind == APOLOGY or (reply.job_id is None and reply.text.endswith(UNDELIVERABLE))


def posted_after_all(session: Session, apology: Reply, picture_ref: str, *, max_attempts: int) -> None:
    """The picture ``apology`` was owed for is posted (as ``picture_ref``): the apology is dropped,
    and the result and its job are recorded as posted."""
    replies.give_up(session, apology.id, f"not sent: the picture was posted after all, as post {picture_ref}",
                    max_attempts=max_attempts)
    for result in replies.for_post(session, apology.platform, apology.in_reply_to_ref):
        if result.kind == KIND and result.reply_ref is None:
            replies.mark_sent(session, result.id, picture_ref)
            job = session.get(Job, result.job_id)
            if job is not None and job.state in (JobState.FAILED, JobState.UPLOADING):
                jobs.mark_posted(session, job.id, reply_ref=picture_ref)


def painted(session: Session, reply: Reply) -> bytes | None:
    """The painted picture a reply owed carries (its job's); None for a text."""
    if reply.job_id is None:
        return None
    data = session.scalar(select(Job.result_image).where(Job.id == reply.job_id))
    if data is None:
        raise ValueError(f"reply {reply.id} carries job {reply.job_id}'s result, which was not painted")
    return data


def picture(reply: Reply, painted: bytes | None, limits: Limits) -> Image | None:
    """The image to post with ``reply``: its ``painted`` picture as a JPEG within ``limits``, and
    its alt text (no database is held while the picture is encoded)."""
    if painted is None:
        return None
    return Image(compose.fit_jpeg(painted, limits.image_bytes), alt_text=compose.fit(reply.alt_text or "", limits.alt_text))
