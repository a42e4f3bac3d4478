"""What a mention asks for: a render (picture + painting), a how-to, or nothing at all."""

from __future__ import annotations

from dataclasses import dataclass

from bot.gateway import Media, Mention

HOWTO = (
    "Send me two photos in one tweet: first your picture, then the painting whose style you "
    "want. I'll reply with your picture painted in that style."
)


@dataclass(frozen=True)
class RenderRequest:
    """Paint ``content`` (the first photo) in the style of ``style`` (the second)."""

    mention: Mention
    content: Media
    style: Media


@dataclass(frozen=True)
class Refusal:
    """No render; ``reason`` is recorded and ``reply`` is what the user is told."""

    mention: Mention
    reason: str
    reply: str


@dataclass(frozen=True)
class Ignore:
    """No render and no reply (the bot's own tweets, retweets)."""

    mention: Mention
    reason: str


Decision = RenderRequest | Refusal | Ignore


def interpret(mention: Mention, *, bot_user_id: str) -> Decision:
    """Decide what to do with one mention, from its photos and who wrote it."""
    if mention.author_id == bot_user_id:
        return Ignore(mention, "the bot's own tweet")
    if mention.is_retweet:
        return Ignore(mention, "a retweet")
    photos = mention.photos
    if len(photos) >= 2:
        return RenderRequest(mention, content=photos[0], style=photos[1])
    if len(photos) == 1:
        return Refusal(mention, "one photo, no painting", "I need a painting too. " + HOWTO)
    if mention.media:
        return Refusal(mention, "media but no photos", "I can only paint photos, not GIFs or videos. " + HOWTO)
    return Refusal(mention, "no photos", HOWTO)
