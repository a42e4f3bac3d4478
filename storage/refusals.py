"""When a user was last sent a reply of some kind: what the one-reply-per-period rule reads.

No table of its own: a reply owed is filed under its kind (``Reply.kind``) and the mention it
answers names the author, so the moment is the newest such reply owed to that author.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Mention, Reply


def last_told(session: Session, *, author_id: str, kind: str) -> datetime | None:
    """When ``author_id`` was last owed a reply of ``kind`` (sent or not yet), or None if never."""
    query = (
        select(func.max(Reply.created_at))
        .join(Mention, Mention.tweet_id == Reply.in_reply_to_tweet_id)
        .where(Mention.author_id == author_id, Reply.kind == kind)
    )
    return session.scalar(query)  # max() keeps the column's type: an aware UTC datetime
