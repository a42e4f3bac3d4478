"""The X client against the sandbox X over real HTTP: reading, writing, and every way X says no.

Time is a ManualClock shared by the client and the sandbox: windows, caps and processing move
when the test says, never by waiting.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from bot.x.settings import XCredentials
from bot.x.errors import (
    XAuthError,
    XDuplicate,
    XError,
    XForbidden,
    XMediaPending,
    XRateLimited,
    XTweetGone,
    XUsageCapped,
)
from bot import retry
from bot.retry import BASE_S, RetryDecision
from bot.x.client import CAP_RECHECK_S, MENTIONS, XClient, _blamed, period_end
from bot.x.platform import translate
from bot.x.dialect import POSTS, SETTING, TWEETS, Dialect, DialectMemory
from bot.x.sandbox import DIALECTS, ManualClock, SandboxX
from storage import platform_settings
from tests.integration.test_sandbox import encoded_image


def decide(error: XError, attempts: int, **kwargs: Any) -> RetryDecision:
    """The core's retry decision over the X error, translated as at the platform's boundary."""
    return retry.decide(translate(error), attempts, **kwargs)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def x(clock: ManualClock) -> Iterator[SandboxX]:
    with SandboxX(bot_username="forgerbot", clock=clock) as sandbox:
        yield sandbox


def gateway_for(x: SandboxX, clock: ManualClock, **kwargs: object) -> XClient:
    return XClient(XCredentials.sandbox(), base_url=x.base_url, timeout_s=2.0, clock=clock, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def gateway(x: SandboxX, clock: ManualClock) -> XClient:
    return gateway_for(x, clock)


def calls(x: SandboxX, path_start: str) -> int:
    return sum(1 for _, path in x.requests_log if path.startswith(path_start))


# -- reading ----------------------------------------------------------------------------------


def test_mentions_follow_next_token_to_the_end_oldest_first(x: SandboxX, gateway: XClient) -> None:
    posted = [x.post(f"user{n % 3}", f"@forgerbot number {n}") for n in range(12)]

    batch = gateway.mentions(x.bot_user_id, since_id=None, page_size=5)

    assert [m.id for m in batch.mentions] == posted and not batch.maybe_gap
    assert calls(x, f"/2/users/{x.bot_user_id}/mentions") == 3  # 5 + 5 + 2
    assert batch.mentions[0].author_username == "user0" and batch.mentions[0].created_at is not None


def test_only_the_newest_mentions_are_reachable_and_the_gap_is_flagged(x: SandboxX, clock: ManualClock) -> None:
    with SandboxX(clock=clock, mention_reach=10) as short:
        posted = [short.post("alice", f"@forgerbot {n}") for n in range(13)]
        gateway = gateway_for(short, clock, mention_reach=10)

        batch = gateway.mentions(short.bot_user_id, since_id=None, page_size=5)

    assert [m.id for m in batch.mentions] == posted[3:] and batch.maybe_gap


@pytest.mark.parametrize("dialect", DIALECTS)
def test_both_dialects_are_read(clock: ManualClock, dialect: str) -> None:
    with SandboxX(clock=clock, dialect=dialect) as x:
        parent = x.post("bob", "my photo", images=[encoded_image(80, 80, seed=1)])
        x.post("alice", "@forgerbot paint it", images=[encoded_image(80, 80, seed=2)], in_reply_to=parent)
        gateway = gateway_for(x, clock)

        [mention] = gateway.mentions(x.bot_user_id, since_id=None).mentions
        again = gateway.mentions(x.bot_user_id, since_id=None).mentions

    assert mention.in_reply_to_id == parent and mention.parent_media_keys  # from includes.tweets or .posts
    assert again == [mention]
    asked = [path for _, path in x.requests_log if path.endswith("/mentions")]
    # X's current names first; an X on the old names refuses them once, then the old ones are spoken.
    assert len(asked) == (3 if dialect == "tweets" else 2)


def test_a_bot_kept_on_the_old_names_switches_when_x_refuses_them_and_keeps_the_switch(
    clock: ManualClock, sessions: sessionmaker[Session]
) -> None:
    memory = DialectMemory(sessions)
    memory.save(TWEETS)  # what an earlier run found, before X's Post rename
    with SandboxX(clock=clock) as x:  # X as it is now: v2.167's names only
        parent = x.post("bob", "my photo", images=[encoded_image(80, 80, seed=1)])
        x.post("alice", "@forgerbot paint it", images=[encoded_image(80, 80, seed=2)], in_reply_to=parent)
        gateway = gateway_for(x, clock, dialects=memory)

        [mention] = gateway.mentions(x.bot_user_id, since_id=None).mentions
        found = gateway.tweet(parent)
        later = gateway_for(x, clock, dialects=memory).mentions(x.bot_user_id, since_id=None).mentions

    assert mention.in_reply_to_id == parent and mention.author_username == "alice" and mention.parent_media_keys
    assert found is not None and found.author_username == "bob" and len(found.photos) == 1
    assert later == [mention]
    assert gateway.dialect is POSTS and memory.load() is POSTS
    # Refused once (X's 400 blames the expansion referenced_tweets.id), never again, by either client.
    assert calls(x, f"/2/users/{x.bot_user_id}/mentions") == 3 and calls(x, f"/2/tweets/{parent}") == 1


def test_an_error_that_blames_no_name_of_a_dialect_switches_nothing(gateway: XClient, x: SandboxX) -> None:
    with pytest.raises(XError) as refused:
        gateway.mentions(x.bot_user_id, since_id=None, page_size=3)  # X takes 5 to 100

    assert refused.value.status == 400 and refused.value.parameters == ("max_results",)
    assert gateway.dialect is POSTS and calls(x, f"/2/users/{x.bot_user_id}/mentions") == 1


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("spoken", [POSTS, TWEETS], ids=["speaks posts", "speaks tweets"])
def test_the_one_shot_upload_is_taken_in_either_dialect(clock: ManualClock, dialect: str, spoken: Dialect) -> None:
    with SandboxX(clock=clock, dialect=dialect) as x:
        gateway = gateway_for(x, clock, dialect=spoken)
        data = encoded_image(60, 40, "PNG", seed=4)

        media_id = gateway.upload_image(data, content_type="image/png")

    assert x.media(f"3_{media_id}").data == data
    # Only X on the new names refuses one: media_type, which the old upload sent.
    refused = dialect == "posts" and spoken is TWEETS
    assert calls(x, "/2/media/upload") == (2 if refused else 1)
    assert gateway.dialect is (POSTS if refused else spoken)


def test_a_400_blames_names_in_either_of_x_s_problem_shapes() -> None:
    listed = {"errors": [{"parameters": {"expansions": ["referenced_tweets.id"]}, "message": "not one of [...]"}]}
    spec = {"type": "https://api.x.com/2/problems/invalid-request", "title": "Invalid Request",
            "detail": "bad", "parameter": "tweet.fields", "value": "author_id"}  # InvalidRequestProblem, v2.167

    assert _blamed(listed) == (("expansions",), ("referenced_tweets.id",))
    assert _blamed(spec) == (("tweet.fields",), ("author_id",))
    assert TWEETS.refused(*_blamed(listed)) and TWEETS.refused(*_blamed(spec)) and not POSTS.refused(*_blamed(spec))


def test_the_kept_dialect_is_per_platform_and_an_unknown_one_is_ignored(sessions: sessionmaker[Session]) -> None:
    memory = DialectMemory(sessions)
    assert memory.load() is None
    memory.save(TWEETS)
    memory.save(TWEETS)
    assert memory.load() is TWEETS and DialectMemory(sessions, platform="elsewhere").load() is None
    with sessions.begin() as s:
        platform_settings.put(s, "x", SETTING, "futures")
    assert memory.load() is None


def test_a_tweet_is_looked_up_with_its_photos_or_is_gone(x: SandboxX, gateway: XClient) -> None:
    photo = x.post("bob", "my cat", images=[encoded_image(90, 60, seed=3)])
    text = x.post("bob", "no photo")
    x.delete(text)

    found = gateway.tweet(photo)

    assert found is not None and [(m.type, m.width, m.height) for m in found.photos] == [("photo", 90, 60)]
    assert gateway.tweet(text) is None


def test_retweets_and_the_bots_own_replies_are_told_apart(x: SandboxX, gateway: XClient) -> None:
    ask = x.post("alice", "@forgerbot paint", images=[encoded_image(seed=4), encoded_image(seed=5)])
    x.retweet("bob", ask)
    media_id = gateway.upload_image(encoded_image(seed=6))
    reply = gateway.reply(ask, "done", media_ids=(media_id,))

    mentions = gateway.mentions(x.bot_user_id, since_id=None).mentions
    mine = gateway.replies_by_me(ask)

    assert [m.is_repost for m in mentions] == [False, True]
    assert [(t.id, len(t.media)) for t in mine] == [(reply, 1)]


# -- writing ----------------------------------------------------------------------------------


def test_a_small_image_is_one_upload_with_alt_text_and_made_with_ai(x: SandboxX, gateway: XClient) -> None:
    ask = x.post("alice", "@forgerbot")
    data = encoded_image(64, 48, seed=7)

    media_id = gateway.upload_image(data)
    assert gateway.upload_image(data) == media_id  # the same bytes are not uploaded twice
    gateway.describe_media(media_id, "A photo painted like a painting.")
    reply = gateway.reply(ask, "here", media_ids=(media_id,), made_with_ai=True)

    [posted] = x.replies_to(ask)
    assert posted.id == reply and posted.made_with_ai
    assert x.media(posted.media_keys[0]).alt_text == "A photo painted like a painting."
    assert [p for m, p in x.requests_log if m == "POST" and p.startswith("/2/media")] == [
        "/2/media/upload", "/2/media/metadata"
    ]


def test_a_large_image_goes_chunked_and_a_failed_chunk_is_sent_again(x: SandboxX, clock: ManualClock) -> None:
    gateway = gateway_for(x, clock, upload_chunk_bytes=64 * 1024)
    data = encoded_image(200, 150, "PNG", seed=8)  # noise: about 90 KB, two chunks
    assert 64 * 1024 < len(data) <= 128 * 1024
    x.fail("POST /2/media/upload/:id/append", 503)

    media_id = gateway.upload_image(data, content_type="image/png")

    steps = [p.rsplit("/", 1)[-1] for m, p in x.requests_log if p.startswith("/2/media")]
    assert steps == ["initialize", "append", "append", "append", "finalize"]  # chunk 0 twice, chunk 1
    stored = x.media(f"3_{media_id}")
    assert stored.data == data and Image.open(io.BytesIO(stored.data)).size == (200, 150)


def test_an_upload_still_processing_is_asked_about_not_sent_again(clock: ManualClock) -> None:
    with SandboxX(clock=clock, processing_s=5) as x:
        gateway = gateway_for(x, clock, upload_chunk_bytes=64 * 1024)
        data = encoded_image(200, 150, "PNG", seed=9)

        with pytest.raises(XMediaPending) as pending:
            gateway.upload_image(data, content_type="image/png")
        assert pending.value.check_at == clock.now + 5
        assert decide(pending.value, 1, max_attempts=3, now=clock.now).at == clock.now + 5
        with pytest.raises(XMediaPending):
            gateway.upload_image(data, content_type="image/png")  # too early: STATUS says in progress
        clock.advance(5)
        media_id = gateway.upload_image(data, content_type="image/png")

        assert pending.value.media_id == media_id
        assert calls(x, "/2/media/upload/initialize") == 1
        assert [m for m, p in x.requests_log if p == "/2/media/upload"] == ["GET", "GET"]


def test_made_with_ai_is_dropped_where_x_does_not_know_it(clock: ManualClock) -> None:
    with SandboxX(clock=clock, made_with_ai=False) as x:
        ask = x.post("alice", "@forgerbot")
        gateway = gateway_for(x, clock)

        first = gateway.reply(ask, "one", made_with_ai=True)
        second = gateway.reply(ask, "two", made_with_ai=True)

    assert [t.id for t in x.replies_to(ask)] == [first, second]
    assert calls(x, "/2/tweets") == 3  # refused once, then never asked with the field again


# -- when X says no ---------------------------------------------------------------------------


def test_a_spent_window_waits_for_its_reset_without_asking_again(clock: ManualClock) -> None:
    with SandboxX(clock=clock, rate_limits={MENTIONS: 1}) as x:
        gateway = gateway_for(x, clock)
        gateway.mentions(x.bot_user_id, since_id=None)
        with pytest.raises(XRateLimited) as first:
            gateway.mentions(x.bot_user_id, since_id=None)
        with pytest.raises(XRateLimited) as second:
            gateway.mentions(x.bot_user_id, since_id=None)
        asked = calls(x, f"/2/users/{x.bot_user_id}/mentions")
        blocked = gateway.blocked_until("read")
        clock.advance(first.value.reset_at - clock.now)  # type: ignore[operator]
        gateway.mentions(x.bot_user_id, since_id=None)

    assert asked == 1  # the window was known to be empty: the second and third never left
    assert first.value.reset_at == second.value.reset_at == blocked == pytest.approx(clock.now, abs=1)
    assert decide(first.value, 1, max_attempts=3, now=clock.now - 900).at == first.value.reset_at


def test_a_429_without_reset_time_waits_a_minute_never_spins(x: SandboxX, gateway: XClient, clock: ManualClock) -> None:
    x.fail(MENTIONS, 429, rate_headers=False)

    with pytest.raises(XRateLimited, match="X sent no reset time") as caught:
        gateway.mentions(x.bot_user_id, since_id=None)
    with pytest.raises(XRateLimited):
        gateway.mentions(x.bot_user_id, since_id=None)

    assert caught.value.reset_at == clock.now + 60
    assert calls(x, f"/2/users/{x.bot_user_id}/mentions") == 1


def test_a_usage_cap_stops_that_kind_of_call_until_the_period_ends_and_tells_the_admin(
    x: SandboxX, clock: ManualClock
) -> None:
    alerts: list[str] = []
    gateway = gateway_for(x, clock, alert=alerts.append)
    ask = x.post("alice", "@forgerbot")
    x.cap("write")

    with pytest.raises(XUsageCapped) as capped:
        gateway.reply(ask, "one")
    with pytest.raises(XUsageCapped):
        gateway.upload_image(encoded_image(seed=10))  # every write, not only the one refused
    gateway.mentions(x.bot_user_id, since_id=None)  # reads go on

    until = clock.now + CAP_RECHECK_S  # asked again within the period, in case the cap was raised
    assert until < period_end("Monthly", clock.now)
    assert capped.value.until == until == gateway.blocked_until("write")
    assert len(alerts) == 1 and "usage cap" in alerts[0] and "2026-02-01" in alerts[0]
    assert calls(x, "/2/tweets") == 1 and calls(x, "/2/media") == 0
    decision = decide(capped.value, 1, max_attempts=3, now=clock.now)
    assert decision.retry and decision.at == until and not decision.counts and decision.alert
    clock.advance(until - clock.now)
    with pytest.raises(XUsageCapped):
        gateway.reply(ask, "still capped")  # one call an hour, and the admin is not told again
    assert calls(x, "/2/tweets") == 2 and len(alerts) == 1
    x.uncap("write")  # the admin raised the cap
    clock.advance(CAP_RECHECK_S)
    assert gateway.reply(ask, "two")


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_transient_and_backed_off_with_jitter(
    x: SandboxX, gateway: XClient, clock: ManualClock, status: int
) -> None:
    x.fail(MENTIONS, status)

    with pytest.raises(XError) as caught:
        gateway.mentions(x.bot_user_id, since_id=None)

    assert caught.value.transient and caught.value.status == status
    waits = [decide(caught.value, 2, max_attempts=3, now=0, rng=random.Random(seed)).at for seed in range(20)]
    assert all(BASE_S <= w <= 2 * BASE_S for w in waits if w is not None) and len(set(waits)) == 20
    assert not decide(caught.value, 3, max_attempts=3, now=0).retry
    assert gateway.mentions(x.bot_user_id, since_id=None).mentions == []  # no pause after a 5xx


def test_with_a_deadline_transient_errors_are_retried_until_it_however_many_attempts() -> None:
    failed = XError("503", status=503)

    later = decide(failed, 50, max_attempts=3, now=0, until=3600, rng=random.Random(1))
    last = decide(failed, 51, max_attempts=3, now=3500, until=3600)
    given_up = decide(failed, 52, max_attempts=3, now=3600, until=3600)

    assert later.retry and retry.MAX_S / 2 <= later.at <= retry.MAX_S  # the backoff, capped
    assert last.retry and last.at == 3600  # the last try is at the deadline itself
    assert not given_up.retry and given_up.tell_user and "deadline" in given_up.reason
    assert not decide(XTweetGone("gone", tweet_id="1"), 1, max_attempts=3, now=0, until=3600).retry


def test_a_slow_x_is_a_transient_timeout(x: SandboxX, clock: ManualClock) -> None:
    gateway = XClient(XCredentials.sandbox(), base_url=x.base_url, timeout_s=0.2, clock=clock)
    x.slow("GET /2/users/me", 1.0)

    with pytest.raises(XError, match="did not answer within 0.2 s") as caught:
        gateway.me()

    assert caught.value.transient and decide(caught.value, 1, max_attempts=3, now=0).retry


def test_credentials_refused_are_a_configuration_error_stated_plainly(x: SandboxX, gateway: XClient) -> None:
    x.fail("GET /2/users/me", 401)
    x.fail("POST /2/tweets", 403, detail="Forbidden")  # what X answers a tier without the endpoint
    x.fail("POST /2/tweets", 403, detail="Your client app is not configured with the appropriate oauth1 app "
                                         "permissions for this endpoint.")
    ask = x.post("alice", "@forgerbot")

    with pytest.raises(XAuthError, match="check X_API_KEY, X_API_SECRET") as unauthorized:
        gateway.me()
    with pytest.raises(XAuthError, match="Read and Write permission") as forbidden:
        gateway.reply(ask, "hi")
    with pytest.raises(XAuthError, match="oauth1 app permissions") as permissions:
        gateway.reply(ask, "hi")

    for error in (unauthorized.value, forbidden.value, permissions.value):
        decision = decide(error, 1, max_attempts=3, now=0)
        assert not error.transient and not decision.retry and decision.alert


def test_a_post_x_refuses_for_its_own_reasons_is_not_blamed_on_the_credentials(
    x: SandboxX, gateway: XClient
) -> None:
    closed = "Reply to this conversation is not allowed because you have not been mentioned or otherwise engaged by the author of the post you are replying to."
    x.fail("POST /2/tweets", 403, detail=closed)
    ask = x.post("alice", "@forgerbot")

    with pytest.raises(XForbidden, match="not allowed") as refused:
        gateway.reply(ask, "hi")
    gateway.reply(ask, "once")
    with pytest.raises(XDuplicate, match="duplicate") as duplicate:
        gateway.reply(ask, "once")

    assert not isinstance(refused.value, XAuthError) and "X_API_KEY" not in str(refused.value)
    forbidden, again = (decide(e.value, 1, max_attempts=3, now=0) for e in (refused, duplicate))
    assert not forbidden.retry and not forbidden.tell_user and forbidden.alert
    assert not again.retry and not again.tell_user and again.alert is None


def test_replying_to_a_deleted_tweet_ends_without_retry(x: SandboxX, gateway: XClient) -> None:
    ask = x.post("alice", "@forgerbot")
    x.delete(ask)

    with pytest.raises(XTweetGone) as gone:
        gateway.reply(ask, "too late")

    assert gone.value.tweet_id == ask and not gone.value.transient
    decision = decide(gone.value, 1, max_attempts=3, now=0)
    assert not decision.retry and not decision.tell_user


def test_period_end_is_the_next_utc_day_or_month() -> None:
    jan_31_noon = 1_769_860_800.0  # 2026-01-31T12:00:00Z
    assert period_end("Daily", jan_31_noon) == 1_769_904_000.0  # 2026-02-01T00:00Z
    assert period_end("Monthly", jan_31_noon) == 1_769_904_000.0
    assert period_end("Monthly", 1_796_126_400.0) == 1_798_761_600.0  # 2026-12-01 -> 2027-01-01
    assert period_end("Weekly", jan_31_noon) == jan_31_noon + 86_400
