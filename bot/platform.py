"""Where people ask for paintings: the one seam between Forger's core and a social platform.

A platform (X in ``bot.x``, the in-memory one in ``bot.memory``) reads the bot's mentions, fetches
posts and their photos, and posts replies; the core (poller, worker, outbox, retry) speaks only
the types and errors below. Each platform translates its own answers into them at its boundary,
so nothing above it sees a platform's JSON or its exceptions.

Ids given by a platform (posts, users, media) are opaque strings; a cursor, too, is the
platform's own: only the platform knows how to read on from one, or how far back to read again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

from storage.jobs import PostWindow
from storage.ledger import Need

if TYPE_CHECKING:
    from bot.media import Downloader, Photo

CallKind = Literal["read", "write"]


@dataclass(frozen=True)
class Account:
    """The bot's own account on a platform."""

    id: str
    handle: str  # without the @


@dataclass(frozen=True)
class Media:
    """A media attachment of a post; ``url`` is set for photos served by address."""

    media_key: str
    type: str  # "photo", "animated_gif" or "video"
    url: str | None
    width: int | None
    height: int | None


@dataclass(frozen=True)
class Post:
    """A post as the bot reads it: a mention, its parent, or one of the bot's own replies."""

    id: str
    text: str  # as its author wrote it: plain text, not escaped for any markup
    author_id: str
    author_username: str
    created_at: datetime | None
    media: tuple[Media, ...]
    is_repost: bool
    in_reply_to_id: str | None = None
    parent_media_keys: tuple[str, ...] = ()  # the parent's attachments, when the platform sent them along

    @property
    def photos(self) -> tuple[Media, ...]:
        return tuple(m for m in self.media if m.type == "photo" and m.url)


@dataclass(frozen=True)
class MentionBatch:
    """Mentions read in one walk, oldest first; ``maybe_gap`` when the platform's reach cut some off."""

    mentions: list[Post]
    maybe_gap: bool


@dataclass(frozen=True)
class Limits:
    """What one post may hold on a platform: the outbox fits each reply to them before posting."""

    text: int  # characters of the post's text
    alt_text: int  # characters of an image's description
    image_bytes: int  # bytes of one image


@dataclass(frozen=True)
class Image:
    """An image to post with a reply: the bytes (a JPEG that fits the platform) and what it shows."""

    data: bytes
    alt_text: str
    content_type: str = "image/jpeg"


class Platform(Protocol):
    """One social platform, as the core needs it. Errors are ``bot.errors.PlatformError``s."""

    name: str  # its name in the registry and in the database's rows, e.g. "x"
    handle: str  # the bot's account as the configuration names it (without the @)
    limits: Limits  # what one post may hold

    def me(self) -> Account:
        """The bot's account (asked once, then remembered)."""
        ...

    def mentions(self, *, since: str | None, start_time: float | None = None, page_size: int = 100) -> MentionBatch:
        """Every reachable mention of the bot after cursor ``since`` (and made after ``start_time``)."""
        ...

    def read_from(self, cursor: str, *, last_read: float, overlap_s: float) -> str:
        """The ``since`` of the next read: ``cursor`` (stored by the read at ``last_read``, epoch
        seconds), moved back to read again the mentions a platform may list late, made up to
        ``overlap_s`` before then."""
        ...

    def cursor_after(self, read: Sequence[Post], held: Sequence[Post]) -> str:
        """The cursor to store after a read of ``read`` (not empty, oldest first), of which ``held``
        must be read again next time."""
        ...

    def mark_seen(self, cursor: str) -> None:
        """The mentions up to ``cursor`` are recorded: a platform that keeps a read marker moves
        it (nothing depends on it, so it never raises)."""
        ...

    def post(self, post_id: str) -> Post | None:
        """The post ``post_id`` with its media, or None if it is deleted or not visible."""
        ...

    def download(self, media: Media, downloader: Downloader, *, name: str) -> Photo:
        """The photo ``media``, checked under ``downloader``'s limits (a platform that serves
        photos by address lets ``downloader`` fetch them); ``bot.errors.MediaError`` if it cannot."""
        ...

    def reply(
        self, in_reply_to: str, text: str, *, image: Image | None = None, need: Need = Need.OWED
    ) -> str:
        """Post ``text`` (and ``image``) as the bot's reply to ``in_reply_to``; the new post's id."""
        ...

    def find_reply(self, in_reply_to: str, *, text: str | None = None, with_image: bool = False) -> str | None:
        """The id of a reply the bot already posted to ``in_reply_to`` (ending with ``text``, or
        carrying an image), if an earlier attempt posted it: what makes posting exactly-once."""
        ...

    def blocked_until(self, kind: CallKind) -> float | None:
        """Until when (epoch seconds) calls of ``kind`` are refused: a usage cap, a spent window."""
        ...

    def post_window(self) -> PostWindow | None:
        """How many posts the platform still takes, and when it takes more (what an ETA waits
        for); None where it sets no such limit."""
        ...
