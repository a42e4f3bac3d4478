"""Posting a painted picture: the reply that carries it, once, whatever crashed before.

The picture goes out as a JPEG that fits a photo limit, with alt text saying what it is and the
gallery credit when the style was a gallery painting (X also labels it as made with AI). A job
tried again may have been posted by an attempt that died before recording it; then the bot's
own replies to the post are looked at first, and one already carrying an image is the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot import compose
from bot.gallery import Gallery
from bot.platform import Image, Platform

log = logging.getLogger(__name__)


def post_result(
    platform: Platform,
    post_ref: str,
    image: bytes,
    style_image: bytes,
    *,
    username: str,
    number: int,
    retried: bool,
    gallery: Gallery | None = None,
    before_post: Callable[[], None] | None = None,
) -> str:
    """Reply to @``username``'s post ``post_ref`` with ``image`` (painted after ``style_image``),
    their picture ``number``; the reply's id.

    ``retried``: an earlier attempt may have posted already, so look before posting.
    ``before_post`` is called once the image is uploaded, just before the reply is posted; an
    exception from it stops the post.
    """
    if retried:
        earlier = platform.find_reply(post_ref, with_image=True)
        if earlier is not None:
            log.warning("post %s already has the bot's reply %s: not posting again", post_ref, earlier)
            return earlier
    painting = (gallery or Gallery.load()).by_image(style_image)
    text = compose.result_text(painting, username=username, number=number)
    picture = Image(compose.fit_jpeg(image), alt_text=compose.alt_text(painting))
    return platform.reply(post_ref, text, image=picture, before_post=before_post)
