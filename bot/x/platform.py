"""X as a ``bot.platform.Platform``: the client's calls in the core's words, its errors translated.

Nothing is decided here: each method is one or two calls of ``XClient`` whose answers are already
the core's types (``bot.x.parsing``), and whose X errors become the core's platform errors, at
this boundary, by one table (``translate``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from bot.errors import AuthError, Duplicate, Forbidden, Gone, PlatformError, RateLimited, Transient, translated
from bot.media import Downloader, Photo
from bot.platform import Account, CallKind, Image, Limits, Media, MentionBatch, Post
from bot.x.client import CREATE_TWEET, XClient
from bot.x.errors import (
    XAuthError,
    XDuplicate,
    XError,
    XForbidden,
    XMediaPending,
    XRateLimited,
    XTweetGone,
    XUsageCapped,
)
from bot.x.snowflake import id_at, shifted
from storage.jobs import PostWindow
from storage.ledger import Need

log = logging.getLogger(__name__)


def translate(exc: XError) -> PlatformError:
    """The core's error for one of X's."""
    message = str(exc)
    if isinstance(exc, XRateLimited):
        return RateLimited(message, until=exc.reset_at, why="rate limit window used up")
    if isinstance(exc, XUsageCapped):
        return RateLimited(message, until=exc.until, why=f"usage cap until the {exc.period.lower()} period ends",
                           alert=True)
    if isinstance(exc, XMediaPending):
        return RateLimited(message, until=exc.check_at, why="X is processing the upload")
    if isinstance(exc, XTweetGone):
        return Gone(message, ref=exc.tweet_id)
    if isinstance(exc, XAuthError):
        return AuthError(message)
    if isinstance(exc, XDuplicate):
        return Duplicate(message)
    if isinstance(exc, XForbidden):
        return Forbidden(message)
    if exc.transient:
        return Transient(message)
    return PlatformError(message)


def _translated() -> AbstractContextManager[None]:
    return translated(XError, translate)


# X's windows are 15 minutes; a user may post 100 times in one (docs.x.com, "Rate limits").
WINDOW_S = 900.0
POSTS_PER_WINDOW = 100
MEDIA_HOSTS = ("pbs.twimg.com",)  # where X serves photos (video.twimg.com serves videos)
# A post's 280 characters, an image description's 1000, a photo's 5 MB.
LIMITS = Limits(text=280, alt_text=1000, image_bytes=5 * 1024 * 1024)


class XPlatform:
    """The bot's account on X, behind the core's ``Platform`` protocol."""

    name = "x"
    limits = LIMITS

    def __init__(self, client: XClient, *, handle: str, media_hosts: Collection[str] = MEDIA_HOSTS) -> None:
        """``handle``: the account the configuration names; ``media_hosts``: where photos may be
        fetched from (X's own; a sandbox's on loopback)."""
        self.client = client
        self.handle = handle
        self.media_hosts = tuple(media_hosts)

    def me(self) -> Account:
        with _translated():
            user_id, username = self.client.me()
        return Account(id=user_id, handle=username)

    def mentions(self, *, since: str | None, start_time: float | None = None, page_size: int = 100) -> MentionBatch:
        with _translated():
            user_id, _ = self.client.me()
            return self.client.mentions(user_id, since_id=since, start_time=start_time, page_size=page_size)

    def read_from(self, cursor: str, *, last_read: float, overlap_s: float) -> str:
        """The cursor, less the overlap where a mention may be listed late (X's ids are times).

        The poll that last moved the cursor, at ``last_read``, saw every mention listed by then;
        one listed late was made at most ``overlap_s`` before it. So only mentions made since
        ``last_read - overlap_s`` are read again: each mention is read again for one overlap, not
        at every poll (X bills every post it serves, and a quiet bot's newest mention would
        otherwise be billed at each poll, forever).
        """
        return str(max(shifted(cursor, -overlap_s), min(int(cursor), id_at(last_read - overlap_s))))

    def cursor_after(self, read: Sequence[Post], held: Sequence[Post]) -> str:
        return str(min([max(int(p.id) for p in read), *(int(p.id) - 1 for p in held)]))

    def mark_seen(self, cursor: str) -> None:
        pass  # X keeps no read marker for the API

    def post(self, post_id: str) -> Post | None:
        with _translated():
            return self.client.tweet(post_id)

    def download(self, media: Media, downloader: Downloader, *, name: str) -> Photo:
        return downloader.fetch(media.url or "", hosts=self.media_hosts, name=name)  # X serves photos by address

    def reply(
        self, in_reply_to: str, text: str, *, image: Image | None = None, need: Need = Need.OWED
    ) -> str:
        with _translated():
            if image is None:
                return self.client.reply(in_reply_to, text, need=need)
            media_id = self.client.upload_image(image.data, content_type=image.content_type)
            self.client.describe_media(media_id, image.alt_text)
            return self.client.reply(in_reply_to, text, media_ids=(media_id,), made_with_ai=True, need=need)

    def find_reply(self, in_reply_to: str, *, text: str | None = None, with_image: bool = False) -> str | None:
        """X may prefix a reply's text with the handles it answers."""
        with _translated():
            mine = self.client.replies_by_me(in_reply_to)
        for earlier in mine:
            if with_image and earlier.media:
                return earlier.id
            if text is not None and not earlier.media and earlier.text.endswith(text):
                return earlier.id
        return None

    def blocked_until(self, kind: CallKind) -> float | None:
        return self.client.blocked_until(kind)

    def post_window(self) -> PostWindow:
        """X's window for posts, as the bot's processes last saw it (the ledger's, shared), or as
        this client saw it; before any post, a whole fresh one (100 per 15 minutes)."""
        known = self.client.ledger.window(CREATE_TWEET) if self.client.ledger is not None else None
        if known is None and CREATE_TWEET in self.client.rate_limits:
            seen = self.client.rate_limits[CREATE_TWEET]
            known = (seen.limit, seen.remaining, seen.reset_at)
        now = self.client.now()
        if known is None:
            return PostWindow(POSTS_PER_WINDOW, POSTS_PER_WINDOW, datetime.fromtimestamp(now + WINDOW_S, UTC), WINDOW_S)
        limit, remaining, reset_at = known
        return PostWindow(limit or POSTS_PER_WINDOW, remaining, datetime.fromtimestamp(reset_at, UTC), WINDOW_S)
