"""What the bot makes of a mention: the rules of ``bot.interpret``, one by one (a pure function)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.gallery import Gallery
from bot.platform import Media, Post as Mention
from bot.x.parsing import parse_tweets
from bot.interpret import (
    Help,
    Ignore,
    Refusal,
    RenderRequest,
    interpret,
    needs_parent,
    words,
)
from bot.options import RenderOptions, Strength, parse_options
from bot.refusals import HOWTO, RefusalKind

BOT = "42"
GALLERY = Gallery.load()


def _photo(key: str, width: int = 640, height: int = 480) -> Media:
    return Media(media_key=key, type="photo", url=f"http://127.0.0.1/media/{key}.jpg", width=width, height=height)


def _mention(
    *media: Media, text: str = "@forgerbot", author_id: str = "7", retweet: bool = False,
    in_reply_to: str | None = None, parent_keys: tuple[str, ...] = (),
) -> Mention:
    return Mention(id="100", text=text, author_id=author_id, author_username="alice", created_at=None,
                   media=media, is_repost=retweet, in_reply_to_id=in_reply_to, parent_media_keys=parent_keys)


def _decide(mention: Mention, parent: Mention | None = None) -> object:
    return interpret(mention, bot_user_id=BOT, gallery=GALLERY, parent=parent, min_side=64)


def test_two_photos_are_picture_then_painting() -> None:
    decision = _decide(_mention(_photo("3_1"), _photo("3_2")))
    assert isinstance(decision, RenderRequest)
    assert (decision.content.media_key, decision.style) == ("3_1", _photo("3_2"))
    assert decision.painting is None and decision.options == RenderOptions()


def test_one_photo_and_a_gallery_name_is_that_painting() -> None:
    decision = _decide(_mention(_photo("3_1"), text="@forgerbot do me like The Scream! strength high"))
    assert isinstance(decision, RenderRequest) and decision.painting is not None
    assert decision.painting.title == "The Scream" and decision.options.strength is Strength.HIGH


def test_one_photo_alone_gets_a_gallery_painting_the_same_each_time() -> None:
    first, again = _decide(_mention(_photo("3_1"), text="@forgerbot hi")), _decide(_mention(_photo("3_1")))
    assert isinstance(first, RenderRequest) and isinstance(again, RenderRequest)
    assert first.painting is not None and first.painting == again.painting


def test_an_unknown_painting_name_is_refused_with_the_closest_suggested() -> None:
    close = _decide(_mention(_photo("3_1"), text="@forgerbot in the style of stary nite"))
    far = _decide(_mention(_photo("3_1"), text="@forgerbot style: mona lisa"))
    assert isinstance(close, Refusal) and close.kind is RefusalKind.UNKNOWN_PAINTING
    assert close.reply == 'I don\'t know a painting called "stary nite". Did you mean "The Starry Night"?'
    assert isinstance(far, Refusal) and "mona lisa" in far.reply and "The Scream" in far.reply
    assert len(far.reply) <= 280


def test_the_link_x_adds_for_the_media_and_its_escapes_are_not_part_of_a_name() -> None:
    asked = _decide(_mention(_photo("3_1"), text="@forgerbot style: the screem https://t.co/AbCdEf1234"))
    assert isinstance(asked, Refusal)
    assert asked.reply == 'I don\'t know a painting called "the screem". Did you mean "The Scream"?'
    # X escapes &, < and >: its parsing gives the core the text as written.
    [post] = parse_tweets({"data": [{"id": "1", "text": "@forgerbot Rain &amp; Speed https://t.co/AbCdEf1234"}]})
    assert words(post).split() == ["Rain", "&", "Speed"]


def test_handles_of_any_platform_are_not_words() -> None:
    text = "@forger.bsky.social @alice-b.example.com. paint this, @bob_1!"
    assert words(_mention(text=text)).split() == [".", "paint", "this,", "!"]


def test_one_photo_replying_to_a_photo_paints_the_parent() -> None:
    mention = _mention(_photo("3_9"), in_reply_to="99", parent_keys=("3_8",))
    parent = Mention(id="99", text="my cat", author_id="8", author_username="bob", created_at=None,
                     media=(_photo("3_8"),), is_repost=False)
    assert needs_parent(mention, GALLERY)
    decision = _decide(mention, parent)
    assert isinstance(decision, RenderRequest)
    assert (decision.content.media_key, decision.style) == ("3_8", _photo("3_9"))


def test_a_reply_in_a_thread_the_bot_is_only_auto_mentioned_in_gets_no_answer() -> None:
    def decide(text: str, *media: Media, in_reply_to: str | None = "99") -> object:
        mention = _mention(*media, text=text, in_reply_to=in_reply_to)
        return interpret(mention, bot_user_id=BOT, gallery=GALLERY, min_side=64, bot_username="forgerbot")

    # X starts a reply with everyone in the thread: thanks to the bot, or talk among friends.
    for chatter in ("@forgerbot thank you!! ❤️", "@alice @ForgerBot wow amazing"):
        assert isinstance(decide(chatter), Ignore), chatter
    # Named in the words themselves, asking for help, or not a reply: addressed to the bot.
    addressed = decide("@alice look @forgerbot, what is this?")
    assert isinstance(addressed, Refusal) and addressed.kind is RefusalKind.NO_PHOTO
    assert isinstance(decide("@forgerbot help"), Help)
    assert isinstance(decide("@forgerbot thanks", in_reply_to=None), Refusal)
    assert isinstance(decide("@forgerbot @alice", _photo("3_1")), RenderRequest)  # a photo is a request


def test_a_painting_is_asked_for_by_name_only_where_the_words_ask_for_one() -> None:
    dog = _decide(_mention(_photo("3_1"), text="@forgerbot love your style! here's my dog"))
    monet = _decide(_mention(_photo("3_1"), text="@forgerbot in the style of Monet please"))
    this = _mention(_photo("3_9"), text="@forgerbot paint bob's cat in the style of this", in_reply_to="99",
                    parent_keys=("3_8",))

    assert isinstance(dog, RenderRequest) and dog.painting is not None  # no name asked: a gallery painting
    assert isinstance(monet, Refusal) and 'a painting called "monet"' in monet.reply
    assert needs_parent(this, GALLERY)  # "this" is the photo attached, the parent is the picture


def test_a_photo_replying_to_the_bots_result_does_not_paint_the_result_again() -> None:
    mention = _mention(_photo("3_9"), text="@forgerbot now this one", in_reply_to="99", parent_keys=("3_8",))
    result = Mention(id="99", text="@alice Here is your picture", author_id=BOT, author_username="forgerbot",
                     created_at=None, media=(_photo("3_8"),), is_repost=False)

    decision = _decide(mention, result)

    assert isinstance(decision, RenderRequest) and decision.content == _photo("3_9")


def test_a_photo_too_small_is_named_by_its_role() -> None:
    parent = Mention(id="99", text="my cat", author_id="8", author_username="bob", created_at=None,
                     media=(_photo("3_8"),), is_repost=False)
    tiny_painting = _mention(_photo("3_9", 40, 40), in_reply_to="99", parent_keys=("3_8",))
    tiny_parent = Mention(id="99", text="my cat", author_id="8", author_username="bob", created_at=None,
                          media=(_photo("3_8", 30, 30),), is_repost=False)

    for decision, start in (
        (_decide(tiny_painting, parent), "Your painting is only 40×40"),
        (_decide(_mention(_photo("3_9"), in_reply_to="99", parent_keys=("3_8",)), tiny_parent),
         "The photo you replied to is only 30×30"),
    ):
        assert isinstance(decision, Refusal) and decision.reply.startswith(start), decision


def test_the_parent_is_not_looked_up_when_it_has_no_media_or_a_painting_is_named() -> None:
    assert not needs_parent(_mention(_photo("3_9"), in_reply_to="99"), GALLERY)
    named = _mention(_photo("3_9"), text="@forgerbot starry night", in_reply_to="99", parent_keys=("3_8",))
    assert not needs_parent(named, GALLERY)


@pytest.mark.parametrize(
    ("media", "kind", "start"),
    [
        ((), RefusalKind.NO_PHOTO, HOWTO),
        ((_photo("3_1"), _photo("3_2"), _photo("3_3")), RefusalKind.TOO_MANY_PHOTOS, "That's 3 photos"),
        ((Media("16_1", "animated_gif", None, 8, 8),), RefusalKind.NOT_A_PHOTO, "I can only paint photos"),
        ((_photo("3_1"), Media("7_1", "video", None, 640, 360)), RefusalKind.NOT_A_PHOTO, "I can only paint photos"),
        ((_photo("3_1", 40, 480), _photo("3_2")), RefusalKind.TOO_SMALL, "Your photo is only 40×480 pixels"),
        ((_photo("3_1"), _photo("3_2", 640, 30)), RefusalKind.TOO_SMALL, "Your painting is only 640×30"),
    ],
)
def test_refusals_are_short_specific_and_friendly(media: tuple[Media, ...], kind: RefusalKind, start: str) -> None:
    decision = _decide(_mention(*media))
    assert isinstance(decision, Refusal) and decision.kind is kind
    assert decision.reply.startswith(start) and len(decision.reply) <= 280


def test_help_gets_the_usage() -> None:
    assert isinstance(_decide(_mention(text="@forgerbot help")), Help)
    assert isinstance(_decide(_mention(text="@forgerbot HELP me please")), Help)
    assert isinstance(_decide(_mention(text="@forgerbot can you help?")), Refusal)  # no photo, not a command


def test_own_tweets_and_retweets_are_ignored() -> None:
    assert isinstance(_decide(_mention(author_id=BOT)), Ignore)
    assert isinstance(_decide(_mention(_photo("3_1"), _photo("3_2"), retweet=True)), Ignore)


@pytest.mark.parametrize(
    ("text", "options", "rest"),
    [
        ("", RenderOptions(), ""),
        ("Strength LOW please", RenderOptions(strength=Strength.LOW), "please"),
        ("high strength, keep colors", RenderOptions(strength=Strength.HIGH, keep_colours=True), ""),
        ("keep my colours and faces off", RenderOptions(keep_colours=True, protect_faces=False), "and"),
        ("the scream strength normal", RenderOptions(), "the scream"),
        ("don't keep colours, no faces", RenderOptions(protect_faces=False), ""),
        ("keep the original colors", RenderOptions(keep_colours=True), ""),
    ],
)
def test_options_are_read_from_the_text(text: str, options: RenderOptions, rest: str) -> None:
    found, left = parse_options(text)
    assert found == options and left == rest
    assert RenderOptions.from_json(found.to_json()) == found


def test_the_gallery_is_extended_from_a_folder_named_in_the_config(tmp_path: Path, samples: Path) -> None:
    (tmp_path / "bridge.jpg").write_bytes((samples / "chelsea.jpg").read_bytes())
    (tmp_path / "paintings.yaml").write_text(
        "- {file: bridge.jpg, title: The Bridge, artist: A. Painter, year: 1901, names: [bridge]}\n"
    )

    gallery = Gallery.load([tmp_path])

    bridge = gallery.find("@forgerbot the BRIDGE please")
    assert bridge is not None and bridge.credit == "after The Bridge, A. Painter, 1901"
    assert len(gallery.paintings) == len(GALLERY.paintings) + 1


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("- {file: missing.jpg, title: T, artist: A, year: 1900}", "painting 1: cannot read"),
        ("- {file: x.jpg, title: T, year: 1900}", "painting 1: artist must be a non-empty string"),
        ("- {file: x.jpg, title: T, artist: A, year: 1900, colour: red}", "unknown key colour"),
        ("title: T", "must be a list of paintings"),
    ],
)
def test_a_broken_gallery_folder_names_the_file_and_entry(tmp_path: Path, labels: str, message: str) -> None:
    (tmp_path / "x.jpg").write_bytes(b"not an image")
    (tmp_path / "paintings.yaml").write_text(labels)

    with pytest.raises(ConfigError, match=f"{tmp_path}/paintings.yaml: .*{message}"):
        Gallery.load([tmp_path])
