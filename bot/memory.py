"""A platform held in memory: a real, small implementation of ``bot.platform.Platform``.

Its posts live in a dict, its ids count up from 1 and nothing is listed late, so the whole bot
(poller, queue, worker, outbox) runs on it in one process with no network and no sandbox: the
fake shipped beside the seam. The world's side (people posting, deleting, the platform
refusing posts for a while) is plain methods: ``publish``, ``delete``, ``block``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from bot.config import Config
from bot.errors import Gone, MediaError, PhotoProblem
from bot.media import Downloader, Photo
from bot.platform import Account, CallKind, Image, Limits, Media, MentionBatch, Post
from storage.jobs import PostWindow
from storage.ledger import Need


class MemoryPlatform:
    """One bot account and the people writing to it, in memory."""

    name = "memory"

    def __init__(self, *, handle: str = "forgerbot", clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._posts: dict[str, Post] = {}
        self._photos: dict[str, bytes] = {}  # media key -> bytes
        self._images: dict[str, Image] = {}  # post id -> the image posted with it
        self._users: dict[str, str] = {}  # username -> user id
        self._blocked: dict[CallKind, float] = {}
        self._last_id = 0
        self.handle = handle
        self.limits = Limits(text=280, alt_text=1000, image_bytes=5 * 1024 * 1024)  # X's, the tightest
        self.account = Account(id=self.add_user(handle), handle=handle)

    # -- the world's side ------------------------------------------------------------------------

    def add_user(self, username: str) -> str:
        """The id of ``username``, made on first use."""
        if username not in self._users:
            self._users[username] = str(len(self._users) + 1)
        return self._users[username]

    def publish(
        self, author: str, text: str, *, photos: Sequence[bytes] = (), in_reply_to: str | None = None,
        repost: bool = False,
    ) -> str:
        """``author`` posts ``text`` with ``photos`` (a reply to ``in_reply_to``, or a repost); its id."""
        post_id = self._next_id()
        media = []
        for n, data in enumerate(photos):
            key = f"{post_id}-{n}"
            self._photos[key] = data
            media.append(Media(media_key=key, type="photo", url=f"memory:{key}", width=None, height=None))
        parent = self._posts.get(in_reply_to) if in_reply_to else None
        self._posts[post_id] = Post(
            id=post_id, text=text, author_id=self.add_user(author), author_username=author,
            created_at=datetime.fromtimestamp(self._clock(), UTC), media=tuple(media), is_repost=repost,
            in_reply_to_id=in_reply_to, parent_media_keys=tuple(m.media_key for m in parent.media) if parent else (),
        )
        return post_id

    def delete(self, post_id: str) -> None:
        self._posts.pop(post_id, None)

    def block(self, kind: CallKind, until: float) -> None:
        """Refuse calls of ``kind`` until ``until`` (a spent window, a cap)."""
        self._blocked[kind] = until

    def replies_to(self, post_id: str) -> list[Post]:
        """Every post answering ``post_id``, oldest first."""
        return [p for p in self._posts.values() if p.in_reply_to_id == post_id]

    def image_of(self, post_id: str) -> Image | None:
        """The image posted with ``post_id``, if any."""
        return self._images.get(post_id)

    # -- the Platform --------------------------------------------------------------------------

    def me(self) -> Account:
        return self.account

    def mentions(self, *, since: str | None, start_time: float | None = None, page_size: int = 100) -> MentionBatch:
        handle = f"@{self.account.handle}".lower()
        found = [
            post for post in self._posts.values()
            if handle in post.text.lower()
            and (since is None or int(post.id) > int(since))
            and (start_time is None or post.created_at is None or post.created_at.timestamp() >= start_time)
        ]
        return MentionBatch(sorted(found, key=lambda p: int(p.id)), maybe_gap=False)

    def read_from(self, cursor: str, *, last_read: float, overlap_s: float) -> str:
        return cursor  # nothing is listed late here

    def cursor_after(self, read: Sequence[Post], held: Sequence[Post]) -> str:
        return str(min([max(int(p.id) for p in read), *(int(p.id) - 1 for p in held)]))

    def mark_seen(self, cursor: str) -> None:
        pass  # nothing is unread here

    def post(self, post_id: str) -> Post | None:
        return self._posts.get(post_id)

    def download(self, media: Media, downloader: Downloader, *, name: str) -> Photo:
        data = self._photos.get(media.media_key)
        if data is None:
            raise MediaError(f"{name} is gone", problem=PhotoProblem.UNREACHABLE)
        return downloader.check(data, name=name)

    def reply(
        self, in_reply_to: str, text: str, *, image: Image | None = None, need: Need = Need.OWED
    ) -> str:
        if in_reply_to not in self._posts:
            raise Gone(f"post {in_reply_to} is gone", ref=in_reply_to)
        post_id = self.publish(self.account.handle, text, in_reply_to=in_reply_to)
        if image is not None:
            self._images[post_id] = image
            media = Media(media_key=f"{post_id}-0", type="photo", url=None, width=None, height=None)
            self._posts[post_id] = replace(self._posts[post_id], media=(media,))
        return post_id

    def find_reply(self, in_reply_to: str, *, text: str | None = None, with_image: bool = False) -> str | None:
        for post in self.replies_to(in_reply_to):
            if post.author_id != self.account.id:
                continue
            if with_image and post.id in self._images:
                return post.id
            if text is not None and post.id not in self._images and post.text.endswith(text):
                return post.id
        return None

    def blocked_until(self, kind: CallKind) -> float | None:
        until = self._blocked.get(kind)
        return until if until is not None and until > self._clock() else None

    def post_window(self) -> PostWindow | None:
        return None  # it takes every post

    def _next_id(self) -> str:
        self._last_id += 1
        return str(self._last_id)


def create(config: Config, sessions: sessionmaker[Session], env: Mapping[str, str]) -> MemoryPlatform:
    """An empty platform for the bot ``config`` names (no secrets, no database of its own)."""
    return MemoryPlatform()
