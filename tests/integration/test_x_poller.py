"""Reading and understanding mentions end to end: sandbox X over real HTTP -> poller -> database.

The gateway, the sandbox and the poller share one ManualClock: overlap, first-start age and the
one-reply-per-period rule move with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot import poller
from bot.x.settings import XCredentials
from bot.gallery import Gallery
from bot.media import Downloader
from bot.platform import MentionBatch
from bot.poller import PollPolicy, PollReport
from bot.refusals import HOWTO, RefusalKind
from bot.x.client import XClient
from bot.x.platform import XPlatform
from bot.x.sandbox import DIALECTS, ManualClock, SandboxX
from storage import cursors, jobs, replies, users
from storage.admission import Limits
from storage.models import Outcome, Post, Reply
from tests.integration.test_sandbox import encoded_image

LIMITS = Limits(per_user_per_day=5, queue_limit=500)
GALLERY = Gallery.load()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def x(clock: ManualClock) -> Iterator[SandboxX]:
    with SandboxX(clock=clock) as sandbox:
        yield sandbox


@pytest.fixture
def policy(x: SandboxX) -> PollPolicy:
    return PollPolicy(gallery=GALLERY, downloader=Downloader(min_side=16, time_limit_s=2.0))


class Bot:
    """The poller's side: one X client and one database, polled by hand."""

    def __init__(self, x: SandboxX, sessions: sessionmaker[Session], clock: ManualClock, policy: PollPolicy) -> None:
        self.x, self.sessions, self.clock, self.policy = x, sessions, clock, policy
        self.client = XClient(XCredentials.sandbox(), base_url=x.base_url, timeout_s=2.0, clock=clock)

    def poll(self, limits: Limits = LIMITS) -> PollReport:
        return poller.poll(self.sessions, XPlatform(self.client, handle="forgerbot", media_hosts=[self.x.media_host]), limits=limits, policy=self.policy, clock=self.clock)

    def mention(self, tweet_id: str) -> Post | None:
        with self.sessions() as s:
            return s.get(Post, ("x", tweet_id))

    def owed(self, tweet_id: str) -> list[Reply]:
        with self.sessions() as s:
            return replies.for_post(s, "x", tweet_id)

    def job_images(self, tweet_id: str) -> tuple[bytes | None, bytes | str | None]:
        """The job's photo, and its painting: an image sent, or a gallery painting's key."""
        with self.sessions() as s:
            job = jobs.by_post(s, "x", tweet_id)
            assert job is not None, f"no job for {tweet_id}"
            return job.content_image, job.style_image if job.style_painting is None else job.style_painting


@pytest.fixture
def bot(x: SandboxX, sessions: sessionmaker[Session], clock: ManualClock, policy: PollPolicy) -> Bot:
    return Bot(x, sessions, clock, policy)


@pytest.fixture
def photos(samples: Path, paintings: Path) -> dict[str, bytes]:
    folders = {"coffee": samples, "chelsea": samples, "the_scream": paintings}
    return {name: (folder / f"{name}.jpg").read_bytes() for name, folder in folders.items()}


# -- reading mentions --------------------------------------------------------------------------


def test_a_mention_listed_late_is_caught_by_the_overlap(bot: Bot, x: SandboxX, clock: ManualClock) -> None:
    late = x.post("alice", "@forgerbot hello?", indexed=False)
    clock.advance(30)
    early = x.post("bob", "@forgerbot hi")
    first = bot.poll()
    x.index(late)  # X lists it only now, after a newer one was served
    clock.advance(30)
    second = bot.poll()

    assert (first.seen, second.seen) == (1, 1)  # bob's, then alice's; bob's not twice
    assert bot.mention(late) is not None and bot.mention(early) is not None
    assert [r.text for r in bot.owed(late)] == [f"@alice {HOWTO}"] and len(bot.owed(early)) == 1
    with bot.sessions() as s:
        assert cursors.get(s, "x", cursors.MENTIONS) == early


def test_a_quiet_bot_reads_its_newest_mention_again_only_for_the_overlap(
    bot: Bot, x: SandboxX, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[int] = []  # X bills every post it serves, each time
    read = bot.client.mentions

    def counted(*args: Any, **kwargs: Any) -> MentionBatch:
        batch = read(*args, **kwargs)
        served.append(len(batch.mentions))
        return batch

    monkeypatch.setattr(bot.client, "mentions", counted)
    x.post("alice", "@forgerbot hi")
    for _ in range(10):
        clock.advance(60)
        bot.poll()

    assert sum(served) <= 3 and served[-5:] == [0] * 5


def test_a_walk_that_reaches_x_s_limit_warns_of_a_gap(
    sessions: sessionmaker[Session], clock: ManualClock, policy: PollPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    with SandboxX(clock=clock, mention_reach=10) as x:
        for n in range(13):
            x.post(f"user{n}", f"@forgerbot {n}")
        bot = Bot(x, sessions, clock, policy)
        bot.client.mention_reach = 10
        with caplog.at_level(logging.WARNING, logger="bot.poller"):
            report = bot.poll()

    assert report.seen == 10
    assert "may have been missed" in caplog.text


def test_on_first_start_old_mentions_are_ignored(bot: Bot, x: SandboxX, clock: ManualClock) -> None:
    old = x.post("alice", "@forgerbot from long ago")
    clock.advance(2 * 3600)
    new = x.post("bob", "@forgerbot just now")

    report = bot.poll()

    assert report.seen == 1 and bot.mention(old) is None and bot.mention(new) is not None


def test_own_tweets_and_retweets_are_ignored(bot: Bot, x: SandboxX, photos: dict[str, bytes]) -> None:
    ask = x.post("alice", "@forgerbot paint", images=[photos["coffee"], photos["chelsea"]])
    own = x.post("forgerbot", "@forgerbot a note to myself")
    retweet = x.retweet("bob", ask)

    report = bot.poll()

    assert (report.queued, report.ignored) == (1, 2)
    for tweet_id, reason in ((own, "the bot's own post"), (retweet, "a repost")):
        mention = bot.mention(tweet_id)
        assert mention is not None and mention.outcome is Outcome.IGNORED and mention.reason == reason
        assert bot.owed(tweet_id) == []


# -- understanding a request -------------------------------------------------------------------


def test_two_photos_are_picture_then_painting(bot: Bot, x: SandboxX, photos: dict[str, bytes]) -> None:
    ask = x.post("alice", "@forgerbot", images=[photos["coffee"], photos["chelsea"]])

    assert bot.poll().queued == 1
    assert bot.job_images(ask) == (photos["coffee"], photos["chelsea"])


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_photo_replying_to_a_photo_paints_the_parent(
    sessions: sessionmaker[Session], clock: ManualClock, policy: PollPolicy, photos: dict[str, bytes], dialect: str
) -> None:
    with SandboxX(clock=clock, dialect=dialect) as x:
        parent = x.post("bob", "my trip", images=[photos["chelsea"]])
        ask = x.post("alice", "@forgerbot this, like that", images=[photos["the_scream"]], in_reply_to=parent)
        bot = Bot(x, sessions, clock, replace(policy, downloader=Downloader(min_side=16)))

        assert bot.poll().queued == 1

    assert bot.job_images(ask) == (photos["chelsea"], photos["the_scream"])
    assert ("GET", f"/2/tweets/{parent}") in x.requests_log


def test_a_photo_replying_to_the_bots_result_repaints_the_photo_it_was_painted_from(
    sessions: sessionmaker[Session], clock: ManualClock, policy: PollPolicy, photos: dict[str, bytes]
) -> None:
    with SandboxX(clock=clock) as x:
        first = x.post("alice", "@forgerbot", images=[photos["coffee"], photos["the_scream"]])
        result = x.post("forgerbot", "@alice Here is your picture no. 1", images=[photos["chelsea"]],
                        in_reply_to=first)
        clock.advance(60)
        again = x.post("alice", "@forgerbot now in this style", images=[photos["the_scream"]], in_reply_to=result)
        bot = Bot(x, sessions, clock, replace(policy, downloader=Downloader(min_side=16)))

        assert bot.poll().queued == 2

    # Her photo again, not the bot's painted result, in the style she sent.
    assert bot.job_images(again) == (photos["coffee"], photos["the_scream"])


def test_a_photo_and_a_gallery_name_or_a_lone_photo_get_a_gallery_painting(
    bot: Bot, x: SandboxX, photos: dict[str, bytes]
) -> None:
    named = x.post("alice", "@forgerbot like The Scream please, keep colours", images=[photos["coffee"]])
    lone = x.post("bob", "@forgerbot", images=[photos["chelsea"]])

    assert bot.poll().queued == 2

    scream = GALLERY.named("the scream")
    # The gallery's painting is named, not copied (#21: a job stored its own copy of it).
    assert scream is not None and bot.job_images(named) == (photos["coffee"], scream.key)
    assert bot.job_images(lone) == (photos["chelsea"], GALLERY.pick(lone).key)


def test_help_gets_the_usage(bot: Bot, x: SandboxX) -> None:
    ask = x.post("alice", "@forgerbot help")

    bot.poll()

    [owed] = bot.owed(ask)
    assert owed.kind == "help" and "strength low/high" in owed.text and len(owed.text) <= 280


@pytest.mark.parametrize(
    ("make", "kind", "start"),
    [
        (lambda x, p: x.post("a", "@forgerbot", images=[encoded_image(8, 8, "GIF")]), RefusalKind.NOT_A_PHOTO, "I can only"),
        (lambda x, p: x.post("a", "@forgerbot", videos=1), RefusalKind.NOT_A_PHOTO, "I can only paint photos"),
        (lambda x, p: x.post("a", "@forgerbot", images=[p["coffee"]] * 3), RefusalKind.TOO_MANY_PHOTOS, "That's 3"),
        (lambda x, p: x.post("a", "@forgerbot", images=[encoded_image(12, 80)]), RefusalKind.TOO_SMALL, "Your photo is only 12×80"),
        (lambda x, p: x.post("a", "@forgerbot", images=[encoded_image(64, 800)]), RefusalKind.BAD_SHAPE,
         "Your photo is 64×800 pixels, too long and thin for me to paint. Please crop it"),
        (lambda x, p: x.post("a", "@forgerbot style: mona lisa", images=[p["coffee"]]), RefusalKind.UNKNOWN_PAINTING, "I don't know"),
        (lambda x, p: x.post("a", "@forgerbot"), RefusalKind.NO_PHOTO, HOWTO),
    ],
    ids=["gif", "video", "three photos", "too small", "too thin", "unknown painting", "no photo"],
)
def test_refusals_are_specific_and_nothing_is_downloaded_for_them(
    bot: Bot, x: SandboxX, photos: dict[str, bytes], make: object, kind: RefusalKind, start: str
) -> None:
    ask = make(x, photos)  # type: ignore[operator]

    assert bot.poll().refused == 1

    [owed] = bot.owed(ask)
    handle, said = owed.text.split(" ", 1)
    assert owed.kind == kind.reply_kind and handle.startswith("@") and said.startswith(start)
    assert not any(path.startswith("/media/") for _, path in x.requests_log)


def test_a_photo_that_is_not_what_it_claims_is_refused(bot: Bot, x: SandboxX, photos: dict[str, bytes]) -> None:
    ask = x.post("alice", "@forgerbot", images=[photos["coffee"], photos["chelsea"]])
    key = x.tweets_by("alice")[0].media_keys[1]
    x.replace_media(key, b"<html>sign in</html>", "image/jpeg")

    assert bot.poll().refused == 1

    [owed] = bot.owed(ask)
    assert owed.kind == "refusal:bad_photo"
    assert owed.text == "@alice Your painting isn't an image I can open. Please send an ordinary photo (JPEG or PNG)."


def test_a_download_that_times_out_loses_nothing(bot: Bot, x: SandboxX, photos: dict[str, bytes]) -> None:
    bot.policy = replace(bot.policy, downloader=Downloader(min_side=16, time_limit_s=0.2))
    ask = x.post("alice", "@forgerbot", images=[photos["coffee"], photos["chelsea"]])
    after = x.post("bob", "@forgerbot ?")
    x.slow("media", 0.6)

    held = bot.poll()
    x.slow("media", 0)
    again = bot.poll()

    assert (held.held, held.refused, again.queued, again.seen) == (1, 1, 1, 1)
    assert bot.mention(after) is not None and bot.job_images(ask)[0] == photos["coffee"]


def test_a_photo_that_cannot_be_fetched_for_an_hour_is_refused_and_stops_holding_the_cursor(
    bot: Bot, x: SandboxX, clock: ManualClock, photos: dict[str, bytes]
) -> None:
    bot.policy = replace(bot.policy, downloader=Downloader(min_side=16, time_limit_s=0.2))
    ask = x.post("alice", "@forgerbot", images=[photos["coffee"], photos["chelsea"]])
    x.slow("media", 0.6)

    held = bot.poll()
    clock.advance(bot.policy.hold_max_s + 60)
    refused = bot.poll()

    assert (held.held, refused.held, refused.refused) == (1, 0, 1)
    mention = bot.mention(ask)
    assert mention is not None and mention.outcome is Outcome.REFUSED
    with bot.sessions() as s:
        assert cursors.get(s, "x", cursors.MENTIONS) == ask


def test_one_reply_per_kind_of_refusal_per_period(bot: Bot, x: SandboxX, clock: ManualClock) -> None:
    gif = encoded_image(8, 8, "GIF")
    spam = [x.post("mallory", "@forgerbot", images=[gif]) for _ in range(3)]
    spam += [x.post("mallory", "@forgerbot help") for _ in range(2)]
    other = x.post("alice", "@forgerbot", images=[gif])
    bot.poll()
    clock.advance(86_400)
    later = x.post("mallory", "@forgerbot", images=[gif])
    bot.poll()

    assert [len(bot.owed(t)) for t in spam] == [1, 0, 0, 1, 0]
    assert len(bot.owed(other)) == 1 and len(bot.owed(later)) == 1
    quiet = bot.mention(spam[1])
    assert quiet is not None and quiet.reason is not None and "not answered" in quiet.reason


def test_over_quota_is_refused_with_its_own_text(bot: Bot, x: SandboxX, photos: dict[str, bytes]) -> None:
    first = x.post("alice", "@forgerbot", images=[photos["coffee"]])
    second = x.post("alice", "@forgerbot", images=[photos["chelsea"]])

    report = bot.poll(Limits(per_user_per_day=1, queue_limit=500))

    assert (report.queued, report.refused) == (1, 1) and bot.owed(first) == []
    [owed] = bot.owed(second)
    assert owed.kind == "refusal:over_quota"
    assert owed.text == "@alice You've had your 1 pictures for today. Send me more tomorrow!"


# -- replying ----------------------------------------------------------------------------------


def test_an_acknowledgement_when_asked_for(bot: Bot, x: SandboxX, photos: dict[str, bytes]) -> None:
    bot.policy = replace(bot.policy, acknowledge=True)
    ask = x.post("alice", "@forgerbot", images=[photos["coffee"]])

    bot.poll()

    [ack] = bot.owed(ask)
    assert (ack.kind, ack.text, ack.optional) == ("ack", "@alice You're next in the queue.", True)


def test_a_banned_user_gets_no_reply(bot: Bot, x: SandboxX, photos: dict[str, bytes]) -> None:
    with bot.sessions.begin() as s:
        users.ban(s, users.seen(s, "x", x.add_user("mallory"), "mallory"), "spam")
    ask = x.post("mallory", "@forgerbot", images=[photos["coffee"]])

    assert bot.poll().ignored == 1

    mention = bot.mention(ask)
    assert mention is not None and mention.outcome is Outcome.IGNORED and bot.owed(ask) == []
