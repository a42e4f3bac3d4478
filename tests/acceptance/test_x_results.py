"""Replying with the painted picture, over real HTTP: what is posted, once, and when X says no."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy.exc import OperationalError

from bot import admin, poller, retry, worker
from bot import replies as bot_replies
from bot import results as bot_results
from bot.app import Forger
from bot.compose import acknowledgement, alt_text, fit_jpeg, result_text
from bot.x.platform import LIMITS
from tests.factories import make_config, on_sandbox
from bot.errors import ConfigError, RateLimited
from bot.gallery import Gallery
from bot.refusals import HOWTO
from bot.rendering import QuickRenderer
from bot.results import UNDELIVERABLE
from bot.worker import BROKEN
from bot.x.sandbox import CREDENTIALS_ENV, DIALECTS, DUPLICATE, SandboxX
from model.settings import Progress
from storage import jobs, replies
from storage.models import Job, JobState, Reply, utcnow

ROOT = Path(__file__).resolve().parents[2]
GALLERY = Gallery.load()
STARRY = GALLERY.named("starry night")


@pytest.fixture
def x() -> Iterator[SandboxX]:
    with SandboxX() as sandbox:
        yield sandbox


def make_forger(x: SandboxX, tmp_path: Path, timeout_s: float = 5.0) -> Forger:
    config = make_config(tmp_path, x=on_sandbox(x, timeout_s=timeout_s))
    return Forger.create(config, CREDENTIALS_ENV, renderer=QuickRenderer(size=64), upgrade=True)


@pytest.fixture
def forger(x: SandboxX, tmp_path: Path) -> Iterator[Forger]:
    bot = make_forger(x, tmp_path)
    yield bot
    bot.close()


@pytest.fixture
def coffee(samples: Path) -> bytes:
    return (samples / "coffee.jpg").read_bytes()


def posts(x: SandboxX) -> int:
    return sum(1 for method, path in x.requests_log if (method, path) == ("POST", "/2/tweets"))


def test_the_result_is_a_jpeg_with_alt_text_a_credit_and_the_ai_label(
    x: SandboxX, forger: Forger, coffee: bytes
) -> None:
    assert STARRY is not None
    png = io.BytesIO()
    Image.open(io.BytesIO(coffee)).save(png, "PNG")
    ask = x.post("alice", "@forgerbot starry night", images=[png.getvalue()])
    forger.poll()

    assert forger.work() == 1

    [reply] = x.replies_to(ask)
    media = x.media(reply.media_keys[0])
    assert reply.made_with_ai
    assert reply.text.startswith(
        "@alice Here is your picture no. 1, painted after The Starry Night, Vincent van Gogh, 1889. https://t.co/"
    )
    assert media.content_type == "image/jpeg" and media.alt_text == alt_text(STARRY)
    assert "The Starry Night by Vincent van Gogh (1889)" in media.alt_text
    with forger.sessions() as s:
        job = jobs.by_post(s, "x", ask)
        assert job is not None and job.state is JobState.REPLIED and job.reply_ref == reply.id


def test_a_picture_too_large_for_x_is_stepped_down_until_it_fits(coffee: bytes) -> None:
    # coffee.jpg is 71 kB: at a lower quality it fits in 50 kB, and in 20 kB only smaller.
    fitted = fit_jpeg(coffee, max_bytes=50_000)
    smaller = fit_jpeg(coffee, max_bytes=20_000)

    assert fit_jpeg(coffee, LIMITS.image_bytes) is coffee  # a JPEG under X's 5 MB goes as it is
    assert len(fitted) <= 50_000 and len(smaller) <= 20_000
    sizes = [Image.open(io.BytesIO(data)).size for data in (coffee, fitted, smaller)]
    assert sizes[1] == sizes[0] and sizes[2][0] < sizes[0][0]  # quality first, then size
    assert LIMITS.image_bytes == 5 * 1024 * 1024


def _paint(forger: Forger) -> None:
    """A render worker's turn: the job painted, its result owed to the outbox, nothing posted."""
    assert worker.work_once(forger.sessions, forger.renderer, forger.lease, gallery=forger.policy.gallery) is not None


def _posted_by_a_deliverer_that_died(forger: Forger, ask: str) -> str:
    """The result posted by a deliverer that died before recording it: its claim lapses."""
    with forger.sessions.begin() as s:
        [result] = replies.for_post(s, "x", ask)
        assert replies.claim(s, result.id, by="dead", now=utcnow() - replies.CLAIM * 2)
        picture = bot_results.picture(result, bot_results.painted(s, result), forger.platform.limits)
    return forger.platform.reply(ask, result.text, image=picture)


def test_a_result_posted_by_a_deliverer_that_died_is_found_not_posted_twice(
    x: SandboxX, forger: Forger, coffee: bytes
) -> None:
    ask = x.post("alice", "@forgerbot", images=[coffee, coffee])
    forger.poll()
    _paint(forger)
    earlier = _posted_by_a_deliverer_that_died(forger, ask)

    report = forger.deliver()["x"]

    assert (report.sent, posts(x)) == (1, 1) and [t.id for t in x.replies_to(ask)] == [earlier]
    with forger.sessions() as s:
        job = jobs.by_post(s, "x", ask)
        assert job is not None and job.state is JobState.REPLIED and job.reply_ref == earlier


def test_a_tweet_deleted_before_the_reply_ends_the_job_without_a_retry(
    x: SandboxX, forger: Forger, coffee: bytes
) -> None:
    ask = x.post("alice", "@forgerbot", images=[coffee, coffee])
    forger.poll()
    x.delete(ask)

    assert forger.work() == 1

    with forger.sessions() as s:
        job = jobs.by_post(s, "x", ask)
        assert job is not None and job.state is JobState.FAILED and job.attempts == 1
        assert job.error is not None and "is gone" in job.error
        [result] = replies.for_post(s, "x", ask)  # given up; no notice: nobody to tell
        assert result.kind == "result" and result.reply_ref is None
    assert posts(x) == 1
    assert forger.deliver()["x"].sent == 0 and posts(x) == 1  # never tried again


def test_a_spent_posting_window_leaves_the_result_in_the_outbox_without_spinning(
    tmp_path: Path, coffee: bytes
) -> None:
    with SandboxX(rate_limits={"POST /2/tweets": 0}) as x:
        forger = make_forger(x, tmp_path)
        try:
            ask = x.post("alice", "@forgerbot", images=[coffee, coffee])
            forger.poll()
            done = forger.work()
            again = forger.work()
            forger.deliver()
        finally:
            forger.close()
        with forger.sessions() as s:
            job = jobs.by_post(s, "x", ask)
            [result] = replies.for_post(s, "x", ask)

    assert (done, again) == (1, 0) and posts(x) == 1  # one 429, then no post until the reset
    # Waiting for X is no failure: the job is painted, its result waits for the reset, no attempt spent.
    assert job is not None and job.state is JobState.UPLOADING and job.attempts == 1
    assert result.attempts == 0 and result.reply_ref is None
    assert forger.platform.blocked_until("write") is not None
    assert result.not_before is not None and result.not_before.timestamp() >= time.time() + 800


def test_reply_texts_fit_a_post() -> None:
    for painting in (None, *GALLERY.paintings):
        longest = result_text(painting, username="a" * 15, number=10**9)
        assert len(longest) <= 280 and not longest.endswith("…") and len(alt_text(painting)) <= 1000
    assert acknowledgement(3, 6 * 60) == "You're #3 in the queue, about 6 minutes."


def test_owed_replies_wait_out_a_usage_cap_without_spending_attempts(x: SandboxX, forger: Forger) -> None:
    ask = x.post("alice", "@forgerbot what is this?")
    x.cap("write")

    forger.poll()  # the how-to is owed; posting it meets the cap
    forger.poll()  # posts are paused: not even asked

    assert posts(x) == 1
    with forger.sessions() as s:
        [owed] = replies.for_post(s, "x", ask)
        assert owed.reply_ref is None and owed.attempts == 0


def test_a_reply_owed_to_a_deleted_tweet_is_given_up_at_once(x: SandboxX, forger: Forger) -> None:
    ask = x.post("alice", "@forgerbot what is this?")
    poller.poll(forger.sessions, forger.platform, limits=forger.limits, policy=forger.policy)
    x.delete(ask)

    report = forger.deliver()["x"]
    forger.deliver()

    assert (report.sent, report.failed) == (0, 1) and posts(x) == 1
    with forger.sessions() as s:
        [owed] = replies.for_post(s, "x", ask)
        assert owed.attempts == forger.config.bot.max_attempts and "is gone" in (owed.error or "")


def test_two_deliverers_at_once_post_an_owed_reply_once(x: SandboxX, forger: Forger) -> None:
    ask = x.post("alice", "@forgerbot what is this?")
    poller.poll(forger.sessions, forger.platform, limits=forger.limits, policy=forger.policy)
    x.slow("POST /2/tweets", 0.5)  # the first is still posting when the second looks

    def deliver(name: str) -> None:
        bot_replies.deliver(forger.sessions, forger.platform, by=name, max_attempts=3)

    threads = [threading.Thread(target=deliver, args=(name,)) for name in ("poller", "worker")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert posts(x) == 1 and len(x.replies_to(ask)) == 1


def test_a_reply_x_posted_although_the_bot_timed_out_is_not_posted_again(x: SandboxX, tmp_path: Path) -> None:
    forger = make_forger(x, tmp_path, timeout_s=0.3)
    try:
        ask = x.post("alice", "@forgerbot what is this?")
        poller.poll(forger.sessions, forger.platform, limits=forger.limits, policy=forger.policy)
        x.slow("POST /2/tweets", 0.6)  # X takes the post, the bot gives up waiting
        first = bot_replies.deliver(forger.sessions, forger.platform, by="w", max_attempts=3)
        x.slow("POST /2/tweets", 0)
        deadline = time.monotonic() + 10
        while not x.replies_to(ask) and time.monotonic() < deadline:  # X finishes the post it took
            time.sleep(0.05)
        later = time.time() + retry.MAX_S  # past any backoff
        second = bot_replies.deliver(forger.sessions, forger.platform, by="w", max_attempts=3, clock=lambda: later)
    finally:
        forger.close()

    assert (first.failed, second.sent) == (1, 1)
    [posted] = x.replies_to(ask)
    assert posts(x) == 1
    with forger.sessions() as s:
        [owed] = replies.for_post(s, "x", ask)
        assert owed.reply_ref == posted.id


def test_a_few_seconds_of_x_errors_do_not_use_up_a_replys_attempts(x: SandboxX, forger: Forger) -> None:
    ask = x.post("alice", "@forgerbot what is this?")
    poller.poll(forger.sessions, forger.platform, limits=forger.limits, policy=forger.policy)
    x.fail("POST /2/tweets", 503, times=3)
    now = time.time()

    reports = [bot_replies.deliver(forger.sessions, forger.platform, by="w", max_attempts=3, clock=lambda: now)
               for _ in range(4)]  # one job after another: the backoff holds the reply back
    later = now + retry.MAX_S
    final = bot_replies.deliver(forger.sessions, forger.platform, by="w", max_attempts=3, clock=lambda: later)

    assert [r.failed for r in reports] == [1, 0, 0, 0] and final.failed == 1
    with forger.sessions() as s:
        [owed] = replies.for_post(s, "x", ask)
        assert owed.attempts == 2 and owed.reply_ref is None and owed.not_before is not None


def _result(forger: Forger, ask: str) -> tuple[Reply, Job]:
    with forger.sessions() as s:
        [result] = [r for r in replies.for_post(s, "x", ask) if r.kind == "result"]
        job = jobs.by_post(s, "x", ask)
        assert job is not None
        return result, job


def _deliver(forger: Forger, now: float, deliver_for_s: float = 6 * 3600) -> bot_replies.DeliveryReport:
    return bot_replies.deliver(forger.sessions, forger.platform, by="w", max_attempts=3, deliver_for_s=deliver_for_s,
                               clock=lambda: now)


def test_a_painted_picture_waits_out_an_outage_of_hours_with_growing_backoff(
    x: SandboxX, forger: Forger, coffee: bytes
) -> None:
    ask = x.post("alice", "@forgerbot", images=[coffee, coffee])
    forger.poll()
    _paint(forger)
    x.outage("write")  # X takes no post for two hours
    start = now = time.time()

    waits = []
    while now < start + 2 * 3600:
        assert _deliver(forger, now).failed == 1
        result, job = _result(forger, ask)
        assert job.state is JobState.UPLOADING and result.reply_ref is None and result.not_before is not None
        waits.append(result.not_before.timestamp() - now)
        now = result.not_before.timestamp()  # the next round, when the backoff is over
    x.recover("write")
    final = _deliver(forger, now)

    assert final.sent == 1 and len(waits) > 3 * forger.config.bot.max_attempts  # hours, not attempts
    assert waits[0] <= retry.BASE_S < retry.MAX_S / 2 <= max(waits) <= retry.MAX_S  # growing, capped
    [painted] = x.replies_to(ask)  # the picture, and no apology
    assert painted.media_keys and not painted.text.endswith(UNDELIVERABLE)
    result, job = _result(forger, ask)
    assert job.state is JobState.REPLIED and result.reply_ref == job.reply_ref == painted.id


def test_a_result_x_keeps_failing_past_its_delivery_time_fails_its_job_and_tells_its_author(
    x: SandboxX, forger: Forger, coffee: bytes
) -> None:
    ask = x.post("alice", "@forgerbot", images=[coffee, coffee])
    forger.poll()
    _paint(forger)
    x.outage("write")
    start = now = time.time()

    while _result(forger, ask)[1].state is JobState.UPLOADING:
        assert _deliver(forger, now, deliver_for_s=3600).failed == 1
        result, _ = _result(forger, ask)
        now = result.not_before.timestamp() if result.not_before else now
    x.recover("write")
    forger.deliver()  # X is well again: the notice goes out (the picture was looked for), the result is not tried again

    assert start + 3599 < now < start + 3600 + retry.MAX_S  # its last attempt was at the deadline (to the µs)
    assert [t.text for t in x.replies_to(ask)] == [f"@alice {UNDELIVERABLE}"]
    result, job = _result(forger, ask)
    assert job.state is JobState.FAILED and job.error is not None and "until the deadline" in job.error
    assert result.reply_ref is None and forger.deliver()["x"].sent == 0


def test_a_last_post_x_took_after_the_bot_stopped_waiting_gets_no_apology(
    x: SandboxX, tmp_path: Path, coffee: bytes
) -> None:
    forger = make_forger(x, tmp_path, timeout_s=0.3)
    try:
        ask = x.post("alice", "@forgerbot", images=[coffee, coffee])
        forger.poll()
        _paint(forger)
        x.fail("POST /2/tweets", 503)
        now = time.time()
        assert _deliver(forger, now, deliver_for_s=60).failed == 1
        x.slow("POST /2/tweets", 0.6)  # the last attempt, at the deadline: X takes it, the bot gives up waiting
        assert _deliver(forger, now + 61, deliver_for_s=60).failed == 1
        assert _result(forger, ask)[1].state is JobState.FAILED  # given up: an apology is owed
        x.slow("POST /2/tweets", 0)
        deadline = time.monotonic() + 10
        while not x.replies_to(ask) and time.monotonic() < deadline:  # X finishes the post it took
            time.sleep(0.05)

        forger.deliver()
        forger.deliver()
    finally:
        forger.close()

    [painted] = x.replies_to(ask)  # the picture, and no apology
    assert painted.media_keys and UNDELIVERABLE not in painted.text
    result, job = _result(forger, ask)
    assert job.state is JobState.REPLIED and result.reply_ref == job.reply_ref == painted.id
    with forger.sessions() as s:
        [apology] = [r for r in replies.for_post(s, "x", ask) if r.kind != "result"]
        assert apology.reply_ref is None and "posted after all" in (apology.error or "")


def test_an_apology_owed_for_a_picture_that_is_on_x_after_all_is_not_sent(
    x: SandboxX, forger: Forger, coffee: bytes
) -> None:
    ask = x.post("alice", "@forgerbot", images=[coffee, coffee])
    forger.poll()
    _paint(forger)
    picture = _posted_by_a_deliverer_that_died(forger, ask)  # X took it; the bot never heard
    with forger.sessions.begin() as s:  # and gave up on it, owing an apology (as a "failure", before 0006)
        result, job = _result(forger, ask)
        replies.give_up(s, result.id, "timed out", max_attempts=3)
        jobs.mark_failed(s, job.id, worker=None, error="gave up after 3 attempts; last: timed out")
        replies.owe(s, platform="x", in_reply_to_ref=ask, kind="failure", text=f"@alice {UNDELIVERABLE}")

    forger.deliver()

    assert [t.id for t in x.replies_to(ask)] == [picture]
    result, job = _result(forger, ask)
    assert job.state is JobState.REPLIED and result.reply_ref == job.reply_ref == picture


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_result_for_a_post_deleted_or_hidden_from_the_bot_is_gone_without_retry_or_apology(
    tmp_path: Path, coffee: bytes, dialect: str
) -> None:
    with SandboxX(dialect=dialect) as x:
        forger = make_forger(x, tmp_path)
        try:
            hidden = x.post("bob", "@forgerbot", images=[coffee, coffee])  # its result is posted first
            deleted = x.post("alice", "@forgerbot", images=[coffee, coffee])
            forger.poll()
            _paint(forger)
            _paint(forger)
            x.delete(deleted)
            # bob's post is still there, but X will not let the bot see it (a block, a protected account).
            x.fail("POST /2/tweets", 403, detail="You attempted to reply to a Tweet that is deleted or not visible to you.")
            x.outage("write")  # an outage first: the results wait it out
            now = time.time()
            _deliver(forger, now)
            x.recover("write")
            report = _deliver(forger, now + retry.MAX_S)
            later = _deliver(forger, now + 7 * 3600)
        finally:
            forger.close()

        assert (report.sent, report.failed, later.sent, later.failed) == (0, 2, 0, 0)
        assert x.replies_to(deleted) == [] and x.replies_to(hidden) == []
        for ask in (deleted, hidden):
            result, job = _result(forger, ask)
            assert job.state is JobState.FAILED and job.error is not None and "is gone" in job.error
            with forger.sessions() as s:
                assert [r.kind for r in replies.for_post(s, "x", ask)] == ["result"]  # no apology owed


def test_replies_owed_go_out_while_reading_mentions_fails(x: SandboxX, forger: Forger) -> None:
    ask = x.post("alice", "@forgerbot what is this?")
    poller.poll(forger.sessions, forger.platform, limits=forger.limits, policy=forger.policy)
    x.cap("read")

    with pytest.raises(RateLimited):
        forger.poll()

    assert [t.text for t in x.replies_to(ask)] == [f"@alice {HOWTO}"]


def test_a_job_retried_by_an_admin_after_its_post_was_lost_is_not_posted_twice(
    x: SandboxX, forger: Forger, coffee: bytes
) -> None:
    ask = x.post("alice", "@forgerbot", images=[coffee, coffee])
    forger.poll()
    _paint(forger)
    _posted_by_a_deliverer_that_died(forger, ask)
    with forger.sessions.begin() as s:  # X said 503 each time, yet had posted it: given up
        [result] = replies.for_post(s, "x", ask)
        replies.give_up(s, result.id, "503", max_attempts=3)
        job = jobs.by_post(s, "x", ask)
        assert job is not None
        jobs.mark_failed(s, job.id, worker=None, error="gave up after 3 attempts; last: 503")
        admin.retry(s, job.id, by="test")

    assert forger.work() == 1  # the picture was kept: owed again, not painted again

    assert posts(x) == 1
    with forger.sessions() as s:
        job = jobs.by_post(s, "x", ask)
        assert job is not None and job.state is JobState.REPLIED


def test_a_job_given_up_after_its_workers_died_tells_its_author(
    x: SandboxX, forger: Forger, coffee: bytes
) -> None:
    ask = x.post("alice", "@forgerbot", images=[coffee, coffee])
    forger.poll()
    with forger.sessions.begin() as s:  # the last attempt's worker dies while painting
        claimed = jobs.claim_next(s, worker="dead", lease_s=0.001, max_attempts=1)
        assert claimed is not None
    time.sleep(0.01)

    forger.lease = replace(forger.lease, max_attempts=1)
    assert forger.work() == 0
    forger.deliver()

    assert [t.text for t in x.replies_to(ask)] == [f"@alice {BROKEN}"]
    with forger.sessions() as s:
        assert jobs.by_post(s, "x", ask).state is JobState.FAILED  # type: ignore[union-attr]


def test_a_reply_x_refuses_for_good_is_given_up_at_once(x: SandboxX, forger: Forger) -> None:
    ask = x.post("alice", "@forgerbot what is this?")
    poller.poll(forger.sessions, forger.platform, limits=forger.limits, policy=forger.policy)
    x.fail("POST /2/tweets", 403, detail=DUPLICATE)

    report = forger.deliver()["x"]
    forger.deliver()

    assert (report.sent, report.failed) == (0, 1) and posts(x) == 1
    with forger.sessions() as s:
        [owed] = replies.for_post(s, "x", ask)
        assert owed.attempts == forger.config.bot.max_attempts and "duplicate" in (owed.error or "")


def test_a_worker_told_to_stop_gives_its_job_back_and_takes_no_other(
    x: SandboxX, forger: Forger, coffee: bytes
) -> None:
    asks = [x.post("alice", "@forgerbot", images=[coffee, coffee]) for _ in range(2)]
    forger.poll()

    def sigterm_mid_render(progress: Progress) -> None:
        if progress.iteration == 2:
            forger.stopping.set()  # what SIGTERM does in `forger work`

    forger.progress = sigterm_mid_render
    forger.work()

    assert posts(x) == 0
    with forger.sessions() as s:
        for ask in asks:  # the render in hand given back without spending an attempt; the next not taken
            job = jobs.by_post(s, "x", ask)
            assert job is not None and job.state is JobState.QUEUED and job.attempts == 0
    forger.stopping.clear()  # the next process
    forger.progress = None
    assert forger.work() == 2 and posts(x) == 2


def test_a_moment_without_the_database_during_a_render_does_not_fail_the_job(
    x: SandboxX, forger: Forger, coffee: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask = x.post("alice", "@forgerbot", images=[coffee, coffee])
    forger.poll()
    renew = jobs.heartbeat
    outage = [OperationalError("UPDATE jobs", {}, ConnectionError("server closed the connection unexpectedly"))]

    def flaky(*args: Any, **kwargs: Any) -> None:
        if outage:
            raise outage.pop()
        renew(*args, **kwargs)

    monkeypatch.setattr(jobs, "heartbeat", flaky)
    assert forger.work() == 1

    assert not outage and len(x.replies_to(ask)) == 1 and x.replies_to(ask)[0].media_keys
    with forger.sessions() as s:
        assert jobs.by_post(s, "x", ask).state is JobState.REPLIED  # type: ignore[union-attr]


def test_a_painting_from_the_operators_gallery_is_credited_and_a_broken_one_stops_the_start(
    x: SandboxX, tmp_path: Path, samples: Path, coffee: bytes
) -> None:
    extra = tmp_path / "gallery"
    extra.mkdir()
    (extra / "bridge.jpg").write_bytes((samples / "chelsea.jpg").read_bytes())
    (extra / "paintings.yaml").write_text(
        "- {file: bridge.jpg, title: The Bridge, artist: A. Painter, year: 1901, names: [bridge]}\n"
    )
    plain = make_forger(x, tmp_path)
    config = plain.config
    plain.close()
    forger = Forger.create(config.replace(gallery=replace(config.gallery, extra_dirs=(str(extra),))),
                           CREDENTIALS_ENV, renderer=QuickRenderer(size=64))
    try:
        ask = x.post("alice", "@forgerbot the bridge please", images=[coffee])
        forger.poll()
        assert forger.work() == 1
    finally:
        forger.close()
    [reply] = x.replies_to(ask)
    assert "painted after The Bridge, A. Painter, 1901." in reply.text

    broken = config.replace(gallery=replace(config.gallery, extra_dirs=(str(tmp_path / "no such folder"),)))
    with pytest.raises(ConfigError, match="no such folder"):
        Forger.create(broken, CREDENTIALS_ENV, renderer=QuickRenderer(size=64))
