"""What a mention asks for: a render (a picture and a style), help, a refusal, or nothing at all.

The rules, in order:

1. The bot's own posts and reposts: ignored, no reply.
2. "help" with no photo: the usage.
3. A GIF or a video: refused (only photos are painted).
4. More than two photos: refused.
5. Two photos: the first is the picture, the second the painting.
6. One photo and a painting's name the gallery knows: that painting.
7. One photo and a name asked for ("style: <name>", "in the style of <name>") that the gallery
   does not know: refused, with the closest names suggested.
8. One photo in a reply to a post with a photo: the parent's photo is the picture, the attached
   one the painting.
9. One photo alone: a gallery painting picked at random, as DeepForger did.
10. No photo: the how-to.

A photo whose size the platform reports below ``min_side`` is refused before anything is downloaded. The
options written in the text (``bot.options``) ride along on every render request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot import refusals
from bot.gallery import Gallery, Painting
from bot.options import RenderOptions, parse_options
from bot.platform import Media, Post
from bot.refusals import RefusalKind

_HELP = re.compile(r"^(?:help|how|usage)\b")  # the first word, @handles aside
# "style: NAME", "style of NAME", "in the style of NAME": the name runs to the end of the text.
# Read on the normalised text (the colon gone), where the raw text asks so (``_ASKS``): "love
# your style" names no painting.
_ASKED = re.compile(r"\b(?:in the style of|style of|style)\s+(?P<name>[a-z0-9 ]+)$")
_ASKS = re.compile(r"\b(?:in the style of|style of|style\s*:)", re.IGNORECASE)
# What ends a request without naming anything, and names that point at the photo attached.
_POLITE = re.compile(r"(?:\s+(?:please|pls|plz|thanks|thank you|thx))+$")
_THIS = frozenset({"this", "that", "this one", "that one", "this painting", "this picture", "it", "mine"})
# An @handle: X's (letters, digits, _) or a domain name (Bluesky's alice.bsky.social).
_HANDLE = r"@[A-Za-z0-9_](?:[A-Za-z0-9_-]|\.(?=[A-Za-z0-9]))*"
# The @handles a reply starts with: a platform may put there everyone it answers (X does).
_LEADING = re.compile(rf"^\s*(?:{_HANDLE}\s+)*")
_MENTIONS = re.compile(rf"(?<![A-Za-z0-9_.]){_HANDLE}")
_LINKS = re.compile(r"\bhttps?://\S+")


@dataclass(frozen=True)
class RenderRequest:
    """Paint ``content`` in the style of ``style``: another photo, or a gallery painting."""

    mention: Post
    content: Media
    style: Media | Painting
    options: RenderOptions = field(default_factory=RenderOptions)

    @property
    def painting(self) -> Painting | None:
        """The gallery painting asked for, if the style is one."""
        return self.style if isinstance(self.style, Painting) else None


@dataclass(frozen=True)
class Refusal:
    """No render; ``reason`` is recorded, ``reply`` is what the user is told, once per period."""

    mention: Post
    kind: RefusalKind
    reason: str
    reply: str


@dataclass(frozen=True)
class Help:
    """The user asked how the bot works: answer with the usage."""

    mention: Post


@dataclass(frozen=True)
class Ignore:
    """No render and no reply (the bot's own posts, reposts, bans, mentions too old)."""

    mention: Post
    reason: str


Decision = RenderRequest | Refusal | Help | Ignore


def words(mention: Post) -> str:
    """The text without @handles (the bot's own and anyone else's) and links: what is asked.

    Platforms add links of their own (X ends a post with media with a link to them)."""
    return _LINKS.sub(" ", _MENTIONS.sub(" ", mention.text))


def needs_parent(mention: Post, gallery: Gallery) -> bool:
    """Whether the mention's meaning hangs on its parent's photo (rule 8): look the parent up."""
    if mention.in_reply_to_id is None or len(mention.photos) != 1 or len(mention.media) != 1:
        return False
    _, text = parse_options(words(mention))
    if gallery.find(text) is not None or _asked(mention, text) is not None:
        return False  # a painting is named: the parent does not matter
    # X includes the parent with its attachments' keys (not the media): look up only one with some.
    return bool(mention.parent_media_keys)


def interpret(
    mention: Post,
    *,
    bot_user_id: str,
    gallery: Gallery,
    parent: Post | None = None,
    min_side: int = 1,
    bot_username: str | None = None,
) -> Decision:
    """Decide what to do with one mention (``parent``: the post it replies to, if looked up).

    With ``bot_username``, a reply without media that names the bot only among the handles a
    platform puts at its start (everyone in the thread) is talk in a thread the bot is in, not a request.
    A parent that is the bot's own post (its result) is never painted again.
    """
    if mention.author_id == bot_user_id:
        return Ignore(mention, "the bot's own post")
    if mention.is_repost:
        return Ignore(mention, "a repost")
    options, text = parse_options(words(mention))
    photos = mention.photos
    if not photos and _HELP.search(text):
        return Help(mention)
    if not mention.media and bot_username is not None and _only_in_thread(mention, bot_username):
        return Ignore(mention, "a reply in a thread the bot is in, not addressed to it")
    if len(photos) < len(mention.media):
        return Refusal(mention, RefusalKind.NOT_A_PHOTO, "a GIF or video", refusals.not_a_photo())
    if len(photos) > 2:
        reason = f"{len(photos)} photos"
        return Refusal(mention, RefusalKind.TOO_MANY_PHOTOS, reason, refusals.too_many_photos(len(photos)))
    if not photos:
        return Refusal(mention, RefusalKind.NO_PHOTO, "no photo", refusals.no_photo())
    if len(photos) == 2:
        if small := _too_small(photos, ("photo", "painting"), min_side):
            return small_refusal(mention, *small, min_side)
        return RenderRequest(mention, content=photos[0], style=photos[1], options=options)
    photo = photos[0]
    painting = gallery.find(text)
    if painting is None and (name := _asked(mention, text)) is not None:
        close = [p.title for p in gallery.closest(name)]
        known = [p.title for p in gallery.paintings]
        reply = refusals.unknown_painting(name, close, known)
        return Refusal(mention, RefusalKind.UNKNOWN_PAINTING, f"no painting called {name!r}", reply)
    mine = parent is not None and parent.author_id == bot_user_id  # the bot's result: not painted again
    parent_photos = parent.photos if parent is not None and not mine else ()
    if painting is None and parent_photos:
        # The photo attached is the painting; the one replied to is the picture.
        if small := _too_small((photo, parent_photos[0]), ("painting", "the photo you replied to"), min_side):
            return small_refusal(mention, *small, min_side)
        return RenderRequest(mention, content=parent_photos[0], style=photo, options=options)
    if small := _too_small(photos, ("photo",), min_side):
        return small_refusal(mention, *small, min_side)
    return RenderRequest(mention, content=photo, style=painting or gallery.pick(mention.id), options=options)


def small_refusal(mention: Post, which: str, width: int, height: int, min_side: int) -> Refusal:
    """The refusal of a photo ``width``×``height``, too small to paint."""
    reason = f"{which} {width}x{height}, under {min_side} px"
    return Refusal(mention, RefusalKind.TOO_SMALL, reason, refusals.too_small(which, width, height, min_side))


def _too_small(photos: Sequence[Media], roles: Sequence[str], min_side: int) -> tuple[str, int, int] | None:
    """(role, width, height) of the first photo the platform says is too small, or None; ``roles`` name
    the photos, in order ("photo", "painting")."""
    for photo, role in zip(photos, roles):
        if photo.width is not None and photo.height is not None and min(photo.width, photo.height) < min_side:
            return role, photo.width, photo.height
    return None


def _asked(mention: Post, text: str) -> str | None:
    """The painting's name the user asked for ("style: NAME", "in the style of NAME"), or None.

    "In the style of this" points at the photo attached, not at a name.
    """
    found = _ASKED.search(text) if _ASKS.search(words(mention)) else None
    if found is None:
        return None
    name = _POLITE.sub("", found["name"]).strip()
    return None if not name or name in _THIS else name


def _only_in_thread(mention: Post, bot_username: str) -> bool:
    """Whether ``mention`` is a reply that names the bot only among the handles it starts with."""
    if mention.in_reply_to_id is None:
        return False
    handle = re.compile(rf"(?<![A-Za-z0-9_])@{re.escape(bot_username)}(?![A-Za-z0-9_])", re.IGNORECASE)
    return handle.search(_LEADING.sub("", mention.text, count=1)) is None
