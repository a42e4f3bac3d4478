"""What the bot writes and attaches when it answers: reply texts, alt text, the JPEG it posts.

Texts are written to fit the shortest post of the bot's platforms (``MAX_POST_CHARS``); the
outbox fits each to its platform's ``Limits`` as it posts (``fit``, ``fit_jpeg``): the painted
picture is a JPEG stepped down in quality, then in size, until it fits the platform's bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from bot.gallery import Painting
from model.images import decode_image, encode_image, resize_to_longest

MAX_POST_CHARS = 280  # the shortest post of the bot's platforms (X's)
# What a reply says once it is addressed ("@", a username of up to 15 characters, a space).
MAX_TEXT_CHARS = MAX_POST_CHARS - 17
MAX_ALT_CHARS = 1000
QUALITIES = (92, 85, 75, 65, 55, 45)  # tried in turn, at each size
SHRINK = 0.75  # when even the lowest quality is too large, the next size down


def addressed(username: str, text: str) -> str:
    """``text`` addressed to @``username``, as every reply of the bot is.

    X refuses a post whose text the account posted a short while ago ("duplicate content"), and
    a bot's answers repeat: addressed, the same answer to two people is two texts.
    """
    return fit(f"@{username} {text}", MAX_POST_CHARS)


def result_text(painting: Painting | None, *, username: str, number: int) -> str:
    """The words of the reply that carries picture ``number`` (the job's), with the gallery
    credit if any. The number keeps two pictures for one person after one painting apart on X."""
    if painting is None:
        return addressed(username, f"Here is your picture no. {number}, painted in the style of your painting.")
    return addressed(username, f"Here is your picture no. {number}, painted {painting.credit}.")


def alt_text(painting: Painting | None) -> str:
    """What the posted image is, for people who cannot see it."""
    if painting is None:
        style = "the style of the painting they sent"
    else:
        style = f"the style of {painting.title} by {painting.artist} ({painting.year})"
    return fit(
        f"The photo this reply answers, repainted in {style}: an AI image made by neural style transfer.",
        MAX_ALT_CHARS,
    )


def help_text(painting_names: Sequence[str]) -> str:
    """The usage, as a reply to "@bot help" (``painting_names``: a few the gallery knows)."""
    return fit(
        "Send me 2 photos: your picture, then a painting. Or 1 photo + a painting's name "
        f"({', '.join(painting_names[:3])}), or 1 photo for a surprise, or reply to a photo with a "
        "painting. Options: strength low/high, keep colours, faces off.",
        MAX_TEXT_CHARS,
    )


def acknowledgement(position: int | None, eta_s: float | None) -> str:
    """The optional "you're in the queue" reply, e.g. "You're #3 in the queue, about 6 minutes."."""
    place = "You're next in the queue" if position in (None, 1) else f"You're #{position} in the queue"
    if eta_s is None:
        return place + "."
    minutes = max(1, math.ceil(eta_s / 60))
    return f"{place}, about {minutes} minute{'s' if minutes != 1 else ''}."


def fit_jpeg(data: bytes, max_bytes: int) -> bytes:
    """``data`` as a JPEG of at most ``max_bytes``: lower quality first, then smaller.

    A JPEG already small enough is returned as it is. Raises ``model.errors.ImageError`` if
    ``data`` is not an image.
    """
    if data.startswith(b"\xff\xd8\xff") and len(data) <= max_bytes:
        return data
    pixels = decode_image(data, name="the painted picture")
    while True:
        for quality in QUALITIES:
            encoded = encode_image(pixels, format="JPEG", quality=quality)
            if len(encoded) <= max_bytes:
                return encoded
        longest = max(pixels.shape[:2])
        if longest <= 16:
            return encoded  # nothing smaller is worth posting; the platform will say if it is still too big
        pixels = resize_to_longest(pixels, max(16, int(longest * SHRINK)))


def fit(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, cut with an ellipsis where it is longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
