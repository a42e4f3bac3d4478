"""Bluesky as a ``bot.platform.Platform``: the client's calls in the core's words, its errors
translated at this boundary (``translate``).

- Mentions are read from ``app.bsky.notification.listNotifications`` (reasons ``mention`` and
  ``reply``), newest first, down to the cursor: the ``indexedAt`` of the newest one recorded
  (never ``isRead``, which an account that never called ``updateSeen`` sees set on all but the
  newest). Once recorded, ``updateSeen`` moves the account's read marker (``mark_seen``).
- Photos come from the author's PDS (``com.atproto.sync.getBlob``), found from the DID.
- A reply carries ``root`` and ``parent`` refs, a mention facet for the person answered, and
  the picture as a blob within Bluesky's 1,000,000 bytes, with alt text and its aspect ratio.
- A deleted parent is ``Gone``; a parent whose author blocks the bot, or whose thread's gate
  leaves the bot out, is ``Forbidden``: neither is tried again.
- Exactly-once: ``find_reply`` reads the bot's own repository on its PDS (``listRecords``), which
  holds a post the moment it is made, where the AppView may list it a moment later.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlsplit

from PIL import Image as PILImage

from bot import compose
from bot.bluesky import parsing, richtext
from bot.bluesky.client import BlueskyClient
from bot.bluesky.errors import (
    BlueskyAuthError,
    BlueskyError,
    BlueskyForbidden,
    BlueskyGone,
    BlueskyRateLimited,
)
from bot.bluesky.identity import Resolver
from bot.bluesky.ledger import Ledger
from bot.errors import AuthError, Forbidden, Gone, MediaError, PlatformError, RateLimited, Transient, translated
from bot.media import Downloader, Photo
from bot.platform import Account, CallKind, Image, Limits, Media, MentionBatch, Post
from storage.ledger import Need

log = logging.getLogger(__name__)

REASONS = ("mention", "reply")
MAX_PAGES = 10  # a walk reads at most this many pages of notifications back to the cursor
FIND_PAGES = 5  # ... and find_reply this many pages (of 100) of the bot's own posts
MAX_BLOB_BYTES = 1_000_000  # app.bsky.embed.images' limit for one image
# 300 graphemes (at least 300 characters: ``richtext.clip`` cuts by graphemes); the apps' 2000 for alt text.
LIMITS = Limits(text=richtext.MAX_GRAPHEMES, alt_text=2000, image_bytes=MAX_BLOB_BYTES)


def translate(exc: BlueskyError) -> PlatformError:
    """The core's error for one of the client's."""
    message = str(exc)
    if isinstance(exc, BlueskyRateLimited):
        return RateLimited(message, until=exc.reset_at, why="rate limit window used up")
    if isinstance(exc, BlueskyGone):
        return Gone(message, ref=exc.uri)
    if isinstance(exc, BlueskyAuthError):
        return AuthError(message)
    if isinstance(exc, BlueskyForbidden):
        return Forbidden(message)
    if exc.transient:
        return Transient(message)
    return PlatformError(message)


def _translated() -> AbstractContextManager[None]:
    return translated(BlueskyError, translate)


class BlueskyPlatform:
    """The bot's account on Bluesky, behind the core's ``Platform`` protocol."""

    name = "bluesky"
    limits = LIMITS

    def __init__(self, client: BlueskyClient, resolver: Resolver, *, handle: str,
                 ledger: Ledger | None = None) -> None:
        self.client = client
        self.resolver = resolver
        self.handle = handle
        self.ledger = ledger
        self._indexed: dict[str, float] = {}  # uri -> indexedAt of the mentions last listed
        self._seen = 0.0  # the read marker this process last set

    def me(self) -> Account:
        with _translated():
            session = self.client.session
        return Account(id=session.did, handle=session.handle)

    # -- reading -------------------------------------------------------------------------------

    def mentions(self, *, since: str | None, start_time: float | None = None, page_size: int = 100) -> MentionBatch:
        """Notifications newest first, down to ``since`` (an ``indexedAt``; those at it read again)."""
        floor = parsing.moment(since) if since is not None else start_time
        found: dict[str, tuple[float, dict[str, Any]]] = {}
        cursor, reached, pages = None, False, 0
        with _translated():
            while not reached and pages < MAX_PAGES:
                params: dict[str, Any] = {"limit": min(page_size, 100), "reasons": list(REASONS)}
                if cursor:
                    params["cursor"] = cursor
                page = self.client.get("app.bsky.notification.listNotifications", need=Need.NEW_WORK, **params)
                pages += 1
                for item in page.get("notifications") or []:
                    at = parsing.moment(item["indexedAt"])
                    if floor is not None and at < floor:
                        reached = True
                        break
                    record = item.get("record") or {}
                    if item.get("reason") in REASONS and record.get("$type") == parsing.POST:
                        found.setdefault(item["uri"], (at, item))
                cursor = page.get("cursor")
                if not cursor:
                    reached = True
            parents = self._parents([item for _, item in found.values()])
        self._indexed = {uri: at for uri, (at, _) in found.items()}
        mentions = [
            parsing.post(item["uri"], item.get("author") or {}, item.get("record") or {},
                         parent_media_keys=parents.get(_parent_uri(item) or "", ()))
            for _, item in sorted(found.values(), key=lambda pair: (pair[0], pair[1]["uri"]))
        ]
        return MentionBatch(mentions, maybe_gap=not reached)

    def _parents(self, items: Sequence[dict[str, Any]]) -> dict[str, tuple[str, ...]]:
        """The media keys of the posts that replies with one photo answer (which may be painted)."""
        wanted = []
        for item in items:
            uri = _parent_uri(item)
            record = item.get("record") or {}
            if uri and len(parsing.media(item.get("author", {}).get("did", ""), record.get("embed"))) == 1:
                wanted.append(uri)
        keys: dict[str, tuple[str, ...]] = {}
        for view in self._views(sorted(set(wanted))):
            did = view.get("author", {}).get("did", "")
            keys[view["uri"]] = tuple(m.media_key for m in parsing.media(did, view.get("record", {}).get("embed")))
        return keys

    def _views(self, uris: Sequence[str]) -> list[dict[str, Any]]:
        views: list[dict[str, Any]] = []
        for start in range(0, len(uris), 25):  # getPosts takes 25 at a time
            page = self.client.get("app.bsky.feed.getPosts", uris=list(uris[start:start + 25]))
            views += page.get("posts") or []
        return views

    def read_from(self, cursor: str, *, last_read: float, overlap_s: float) -> str:
        """The cursor, less the overlap where a notification may be listed late (see ``XPlatform``)."""
        at = parsing.moment(cursor)
        return parsing.stamp(max(at - overlap_s, min(at, last_read - overlap_s)))

    def cursor_after(self, read: Sequence[Post], held: Sequence[Post]) -> str:
        def at(post: Post) -> float:
            if post.id in self._indexed:
                return self._indexed[post.id]
            return post.created_at.timestamp() if post.created_at else 0.0

        return parsing.stamp(min([max(at(p) for p in read), *(at(p) for p in held)]))

    def mark_seen(self, cursor: str) -> None:
        """Move the account's read marker to ``cursor`` (``updateSeen``): what its apps show as
        unread. Nothing depends on it, so a failure is only logged."""
        at = parsing.moment(cursor)
        if at <= self._seen:
            return
        try:
            self.client.post("app.bsky.notification.updateSeen", {"seenAt": cursor}, need=Need.OPTIONAL)
            self._seen = at
        except BlueskyError as exc:
            log.warning("could not mark the notifications read: %s", exc)

    def post(self, post_id: str) -> Post | None:
        with _translated():
            views = self._views([post_id])
        if not views:
            return None
        view = views[0]
        return parsing.post(view["uri"], view.get("author") or {}, view.get("record") or {})

    def download(self, media: Media, downloader: Downloader, *, name: str) -> Photo:
        """The photo from its author's PDS, under ``downloader``'s limits."""
        did, _ = parsing.blob_of(media)
        try:
            pds = self.resolver.pds(did)
        except BlueskyError as exc:
            raise MediaError(f"{name} could not be found: {exc}", transient=exc.transient) from exc
        return downloader.fetch(f"{pds}/xrpc/{media.url}", hosts=(urlsplit(pds).hostname or "",), name=name)

    # -- writing -------------------------------------------------------------------------------

    def reply(
        self, in_reply_to: str, text: str, *, image: Image | None = None, need: Need = Need.OWED
    ) -> str:
        with _translated():
            parent = self._replyable(in_reply_to)
            author = parent.get("author") or {}
            text = richtext.clip(text)
            record: dict[str, Any] = {
                "$type": parsing.POST, "text": text, "createdAt": parsing.stamp(time.time()),
                "reply": parsing.root_and_parent(parent), "langs": ["en"],
            }
            facets = richtext.mention_facets(text, {author["handle"]: author["did"]}) if author.get("handle") else []
            if facets:
                record["facets"] = facets
            if image is not None:
                record["embed"] = {"$type": parsing.IMAGES, "images": [self._upload(image, need)]}
            made = self.client.post("com.atproto.repo.createRecord", {
                "repo": self.client.session.did, "collection": parsing.POST, "record": record,
            }, need=need)
        return str(made["uri"])

    def _replyable(self, uri: str) -> dict[str, Any]:
        """The post view of ``uri``, if the bot may reply to it; else BlueskyGone or BlueskyForbidden."""
        views = self._views([uri])
        if not views or views[0].get("$type", "").endswith(("#notFoundPost", "#blockedPost")):
            raise BlueskyGone(f"post {uri} is deleted or not visible to the bot", uri=uri)
        view = views[0]
        viewer = (view.get("author") or {}).get("viewer") or {}
        if viewer.get("blockedBy") or viewer.get("blocking"):
            raise BlueskyForbidden(f"the author of post {uri} and the bot block each other")
        if (view.get("viewer") or {}).get("replyDisabled"):
            raise BlueskyForbidden(f"post {uri}'s thread does not let the bot reply")
        return view

    def _upload(self, image: Image, need: Need) -> dict[str, Any]:
        """``image`` uploaded as a blob within the limit; the ``images`` entry that shows it."""
        data = compose.fit_jpeg(image.data, MAX_BLOB_BYTES) if len(image.data) > MAX_BLOB_BYTES else image.data
        content_type = "image/jpeg" if data is not image.data else image.content_type
        with PILImage.open(io.BytesIO(data)) as opened:
            width, height = opened.size
        blob = self.client.call("POST", "com.atproto.repo.uploadBlob", data=data, content_type=content_type,
                                need=need)["blob"]
        return {"image": blob, "alt": image.alt_text, "aspectRatio": {"width": width, "height": height}}

    def find_reply(self, in_reply_to: str, *, text: str | None = None, with_image: bool = False) -> str | None:
        """The bot's reply to ``in_reply_to`` among its newest posts, read from its own PDS."""
        cursor = None
        with _translated():
            for _ in range(FIND_PAGES):
                params: dict[str, Any] = {"repo": self.client.session.did, "collection": parsing.POST, "limit": 100}
                if cursor:
                    params["cursor"] = cursor
                page = self.client.get("com.atproto.repo.listRecords", need=Need.OWED, **params)
                for item in page.get("records") or []:
                    value = item.get("value") or {}
                    if (value.get("reply") or {}).get("parent", {}).get("uri") != in_reply_to:
                        continue
                    has_image = (value.get("embed") or {}).get("$type") == parsing.IMAGES
                    if with_image and has_image:
                        return str(item["uri"])
                    if text is not None and not has_image and str(value.get("text", "")).endswith(richtext.clip(text)):
                        return str(item["uri"])
                cursor = page.get("cursor")
                if not cursor:
                    break
        return None

    def blocked_until(self, kind: CallKind) -> float | None:
        return self.ledger.blocked_until(kind) if self.ledger is not None else None


def _parent_uri(item: dict[str, Any]) -> str | None:
    reply = (item.get("record") or {}).get("reply")
    return reply.get("parent", {}).get("uri") if isinstance(reply, dict) else None
