"""Posting a painted picture: the reply that carries it, once, whatever crashed before.

The picture goes out as a JPEG that fits X's photo limit, with alt text saying what it is, the
gallery credit when the style was a gallery painting, and X's ``made_with_ai`` label. A job tried
again may have been posted by an attempt that died before recording it; then the bot's own
replies to the tweet are looked at first, and one already carrying an image is the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot import compose
from bot.gallery import Gallery
from bot.gateway import XGateway

log = logging.getLogger(__name__)


def post_result(
    gateway: XGateway,
    tweet_id: str,
    image: bytes,
    style_image: bytes,
    *,
    username: str,
    number: int,
    retried: bool,
    gallery: Gallery | None = None,
    before_post: Callable[[], None] | None = None,
) -> str:
    """Reply to @``username``'s ``tweet_id`` with ``image`` (painted after ``style_image``), their
    picture ``number``; the reply's id.

    ``retried``: an earlier attempt may have posted already, so look before posting.
    ``before_post`` is called once the image is uploaded, just before the reply is posted; an
    exception from it stops the post.
    """
    if retried:
        for earlier in gateway.replies_by_me(tweet_id):
            if earlier.media:
                log.warning("tweet %s already has the bot's reply %s: not posting again", tweet_id, earlier.id)
                return earlier.id
    painting = (gallery or Gallery.load()).by_image(style_image)
    media_id = gateway.upload_image(compose.fit_jpeg(image), content_type="image/jpeg")
    gateway.describe_media(media_id, compose.alt_text(painting))
    if before_post is not None:
        before_post()
    text = compose.result_text(painting, username=username, number=number)
    return gateway.reply(tweet_id, text, media_ids=(media_id,), made_with_ai=True)
