"""What a mention asks for: a render (a picture and a style), help, a refusal, or nothing at all.

The rules, in order:

1. The bot's own tweets and retweets: ignored, no reply.
2. "help" with no photo: the usage.
3. A GIF or a video: refused (only photos are painted).
4. More than two photos: refused.
5. Two photos: the first is the picture, the second the painting.
6. One photo and a painting's name the gallery knows: that painting.
7. One photo and a name asked for ("style: <name>", "in the style of <name>") that the gallery
   does not know: refused, with the closest names suggested.
8. One photo in a reply to a tweet with a photo: the parent's photo is the picture, the attached
   one the painting.
9. One photo alone: a gallery painting picked at random, as DeepForger did.
10. No photo: the how-to.

A photo whose size X reports below ``min_side`` is refused before anything is downloaded. The
options written in the text (``bot.options``) ride along on every render request.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from bot import refusals
from bot.gallery import Gallery, Painting
from bot.gateway import Media, Mention
from bot.options import RenderOptions, parse_options
from bot.refusals import RefusalKind

_HELP = re.compile(r"^(?:help|how|usage)\b")  # the first word, @handles aside
# "style: NAME", "style of NAME", "in the style of NAME": the name runs to the end of the text.
_ASKED = re.compile(r"\b(?:in the style of|style of|style)\s+(?P<name>[a-z0-9 ]+)$")
_MENTIONS = re.compile(r"(?<![A-Za-z0-9_])@[A-Za-z0-9_]{1,15}")
_LINKS = re.compile(r"\bhttps?://\S+")


@dataclass(frozen=True)
class RenderRequest:
    """Paint ``content`` in the style of ``style``: another photo, or a gallery painting."""

    mention: Mention
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

    mention: Mention
    kind: RefusalKind
    reason: str
    reply: str


@dataclass(frozen=True)
class Help:
    """The user asked how the bot works: answer with the usage."""

    mention: Mention


@dataclass(frozen=True)
class Ignore:
    """No render and no reply (the bot's own tweets, retweets, bans, mentions too old)."""

    mention: Mention
    reason: str


Decision = RenderRequest | Refusal | Help | Ignore


def words(mention: Mention) -> str:
    """The text without @handles (the bot's own and anyone else's) and links, unescaped.

    X ends the text of a tweet with media with a t.co link to them, and escapes ``&<>``.
    """
    return html.unescape(_LINKS.sub(" ", _MENTIONS.sub(" ", mention.text)))


def needs_parent(mention: Mention, gallery: Gallery) -> bool:
    """Whether the mention's meaning hangs on its parent's photo (rule 8): look the parent up."""
    if mention.in_reply_to_id is None or len(mention.photos) != 1 or len(mention.media) != 1:
        return False
    _, text = parse_options(words(mention))
    if gallery.find(text) is not None or _ASKED.search(text):
        return False  # a painting is named: the parent does not matter
    # X includes the parent with its attachments' keys (not the media): look up only one with some.
    return bool(mention.parent_media_keys)


def interpret(
    mention: Mention,
    *,
    bot_user_id: str,
    gallery: Gallery | None = None,
    parent: Mention | None = None,
    min_side: int = 1,
) -> Decision:
    """Decide what to do with one mention (``parent``: the tweet it replies to, if looked up)."""
    gallery = gallery or Gallery.load()
    if mention.author_id == bot_user_id:
        return Ignore(mention, "the bot's own tweet")
    if mention.is_retweet:
        return Ignore(mention, "a retweet")
    options, text = parse_options(words(mention))
    photos = mention.photos
    if not photos and _HELP.search(text):
        return Help(mention)
    if len(photos) < len(mention.media):
        return Refusal(mention, RefusalKind.NOT_A_PHOTO, "a GIF or video", refusals.not_a_photo())
    if len(photos) > 2:
        reason = f"{len(photos)} photos"
        return Refusal(mention, RefusalKind.TOO_MANY_PHOTOS, reason, refusals.too_many_photos(len(photos)))
    if not photos:
        return Refusal(mention, RefusalKind.NO_PHOTO, "no photo", refusals.no_photo())
    if small := _too_small(photos, min_side):
        return small_refusal(mention, *small, min_side)
    if len(photos) == 2:
        return RenderRequest(mention, content=photos[0], style=photos[1], options=options)
    photo = photos[0]
    if painting := gallery.find(text):
        return RenderRequest(mention, content=photo, style=painting, options=options)
    if asked := _ASKED.search(text):
        name = asked["name"].strip()
        close = [p.title for p in gallery.closest(name)]
        known = [p.title for p in gallery.paintings]
        reply = refusals.unknown_painting(name, close, known)
        return Refusal(mention, RefusalKind.UNKNOWN_PAINTING, f"no painting called {name!r}", reply)
    parent_photos = parent.photos if parent is not None else ()
    if parent_photos:
        if small := _too_small(parent_photos[:1], min_side):
            return small_refusal(mention, *small, min_side)
        return RenderRequest(mention, content=parent_photos[0], style=photo, options=options)
    return RenderRequest(mention, content=photo, style=gallery.pick(mention.id), options=options)


def small_refusal(mention: Mention, which: str, width: int, height: int, min_side: int) -> Refusal:
    """The refusal of a photo ``width``×``height``, too small to paint."""
    reason = f"{which} {width}x{height}, under {min_side} px"
    return Refusal(mention, RefusalKind.TOO_SMALL, reason, refusals.too_small(which, width, height, min_side))


def _too_small(photos: tuple[Media, ...], min_side: int) -> tuple[str, int, int] | None:
    """(which, width, height) of the first photo X says is too small, or None."""
    for index, photo in enumerate(photos):
        if photo.width is not None and photo.height is not None and min(photo.width, photo.height) < min_side:
            which = "painting" if index == 1 else "photo"
            return which, photo.width, photo.height
    return None
