"""What the bot makes of a mention, from its photos and its author."""

from __future__ import annotations

from bot.gateway import Media, Mention
from bot.interpret import HOWTO, Ignore, Refusal, RenderRequest, interpret

BOT = "42"


def _photo(key: str) -> Media:
    return Media(media_key=key, type="photo", url=f"http://127.0.0.1/media/{key}.jpg", width=640, height=480)


def _mention(*media: Media, author_id: str = "7", retweet: bool = False) -> Mention:
    return Mention(id="100", text="@forgerbot", author_id=author_id, author_username="alice",
                   created_at=None, media=media, is_retweet=retweet)


def test_two_photos_are_picture_then_painting() -> None:
    decision = interpret(_mention(_photo("3_1"), _photo("3_2")), bot_user_id=BOT)
    assert isinstance(decision, RenderRequest)
    assert (decision.content.media_key, decision.style.media_key) == ("3_1", "3_2")


def test_one_photo_asks_for_a_painting() -> None:
    decision = interpret(_mention(_photo("3_1")), bot_user_id=BOT)
    assert isinstance(decision, Refusal) and decision.reply.startswith("I need a painting too.")


def test_no_photo_gets_the_howto() -> None:
    decision = interpret(_mention(), bot_user_id=BOT)
    assert isinstance(decision, Refusal) and decision.reply == HOWTO and len(HOWTO) <= 280


def test_gifs_and_videos_are_not_photos() -> None:
    gif = Media(media_key="16_1", type="animated_gif", url=None, width=None, height=None)
    decision = interpret(_mention(gif, gif), bot_user_id=BOT)
    assert isinstance(decision, Refusal) and "GIFs" in decision.reply


def test_own_tweets_and_retweets_are_ignored() -> None:
    assert isinstance(interpret(_mention(author_id=BOT), bot_user_id=BOT), Ignore)
    assert isinstance(interpret(_mention(_photo("3_1"), _photo("3_2"), retweet=True), bot_user_id=BOT), Ignore)
