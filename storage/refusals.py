"""When a user was last sent a reply of some kind: what the one-reply-per-period rule reads.

No table of its own: a reply owed is filed under its kind (``Reply.kind``) and the post it
answers names the author, so the moment is the newest such reply owed to that author.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Post, Reply


def last_told(session: Session, *, platform: str, author_ref: str, kind: str) -> datetime | None:
    """When ``author_ref`` of ``platform`` was last owed a reply of ``kind`` (sent or not yet), or None."""
    query = (
        select(func.max(Reply.created_at))
        .join(Post, (Post.platform == Reply.platform) & (Post.post_ref == Reply.in_reply_to_ref))
        .where(Post.platform == platform, Post.author_ref == author_ref, Reply.kind == kind)
    )
    return session.scalar(query)  # max() keeps the column's type: an aware UTC datetime
