"""The whole loop in one process on the in-memory platform: mention -> queue -> render -> reply.

No sandbox and no HTTP: the platform is ``bot.memory``, chosen by name in the config as X is, so
these tests show the core running on a platform that is not X.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from bot import platforms
from bot.app import Forger
from tests.factories import make_config
from bot.errors import ConfigError, ForgerError
from bot.memory import MemoryPlatform
from bot.refusals import HOWTO
from bot.rendering import QuickRenderer
from storage import cursors, jobs, replies
from storage.models import JobState

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def forger(tmp_path: Path) -> Iterator[Forger]:
    config = make_config(tmp_path, bot={"platforms": ["memory"]})
    bot = Forger.create(config, {}, renderer=QuickRenderer(size=96), upgrade=True)  # no secrets needed
    yield bot
    bot.close()


@pytest.fixture
def world(forger: Forger) -> MemoryPlatform:
    assert isinstance(forger.platform, MemoryPlatform)
    return forger.platform


@pytest.fixture
def photos(samples: Path) -> dict[str, bytes]:
    return {name: (samples / f"{name}.jpg").read_bytes() for name in ("coffee", "chelsea")}


def test_the_config_names_the_platform_and_an_unknown_one_is_refused_by_its_key() -> None:
    assert platforms.factory("memory") is not None
    with pytest.raises(ConfigError, match="bot.platforms may list bluesky, memory, x, got: 'myspace'"):
        platforms.factory("myspace")


def test_a_mention_is_painted_and_answered_with_its_picture_once(
    forger: Forger, world: MemoryPlatform, photos: dict[str, bytes]
) -> None:
    ask = world.publish("alice", "@forgerbot like the starry night, please", photos=[photos["coffee"]])
    bare = world.publish("bob", "@forgerbot hello?")

    report = forger.poll()["memory"]
    assert (report.seen, report.queued, report.refused) == (2, 1, 1)
    assert [p.text for p in world.replies_to(bare)] == [f"@bob {HOWTO}"]  # delivered after the poll
    assert forger.work() == 1

    [painted] = world.replies_to(ask)
    assert painted.author_id == world.me().id
    assert painted.text.startswith("@alice Here is your picture no. 1, painted after The Starry Night")
    picture = world.image_of(painted.id)
    assert picture is not None and "The Starry Night" in picture.alt_text
    assert Image.open(io.BytesIO(picture.data)).format == "JPEG"
    with forger.sessions() as s:
        job = jobs.by_post(s, "memory", ask)
        assert job is not None and job.state is JobState.REPLIED and job.reply_ref == painted.id
        assert job.author_username == "alice"
        assert cursors.get(s, "memory", cursors.MENTIONS) == bare

    forger.poll()  # nothing new: nothing queued or answered twice
    assert forger.work() == 0
    assert len(world.replies_to(ask)) == 1 and len(world.replies_to(bare)) == 1


def test_a_post_deleted_before_the_reply_ends_its_job_with_nobody_told(
    forger: Forger, world: MemoryPlatform, photos: dict[str, bytes]
) -> None:
    ask = world.publish("alice", "@forgerbot", photos=[photos["coffee"], photos["chelsea"]])
    forger.poll()
    world.delete(ask)

    assert forger.work() == 1

    with forger.sessions() as s:
        job = jobs.by_post(s, "memory", ask)
        assert job is not None and job.state is JobState.FAILED
        [result] = replies.for_post(s, "memory", ask)  # the result, given up; no notice to nobody
        assert result.kind == "result" and result.reply_ref is None


def test_a_result_painted_while_the_platform_takes_no_posts_waits_in_the_outbox(
    forger: Forger, world: MemoryPlatform, photos: dict[str, bytes]
) -> None:
    ask = world.publish("alice", "@forgerbot", photos=[photos["coffee"], photos["chelsea"]])
    forger.poll()
    world.block("write", time.time() + 60)

    assert forger.work() == 1  # painting needs no platform

    with forger.sessions() as s:
        assert jobs.by_post(s, "memory", ask).state is JobState.UPLOADING  # type: ignore[union-attr]
    assert world.replies_to(ask) == []
    world.block("write", 0)
    assert forger.deliver()["memory"].sent == 1 and len(world.replies_to(ask)) == 1
    with forger.sessions() as s:
        assert jobs.by_post(s, "memory", ask).state is JobState.REPLIED  # type: ignore[union-attr]


def test_a_render_worker_needs_only_the_database(tmp_path: Path, photos: dict[str, bytes]) -> None:
    config = make_config(tmp_path)  # bot.platforms is [x], and there are no X keys here
    worker = Forger.create(config, {}, renderer=QuickRenderer(size=96), upgrade=True, render_only=True)
    try:
        with worker.sessions.begin() as s:
            job_id = jobs.enqueue(s, content_image=photos["coffee"], style_image=photos["chelsea"]).id
        assert not worker.posts and worker.work() == 1
        with pytest.raises(ForgerError, match="only renders"):
            _ = worker.platform
        with worker.sessions() as s:
            assert jobs.get(s, job_id).state is JobState.REPLIED
    finally:
        worker.close()


def test_a_job_from_no_post_is_painted_and_kept(forger: Forger, photos: dict[str, bytes]) -> None:
    with forger.sessions.begin() as s:  # what a web upload will queue: no platform, no post
        job_id = jobs.enqueue(s, content_image=photos["coffee"], style_image=photos["chelsea"]).id

    assert forger.work() == 1

    with forger.sessions() as s:
        job = jobs.get(s, job_id)
        assert job.state is JobState.REPLIED and job.reply_ref is None and job.result_image


def test_one_bot_answers_on_two_platforms_and_one_failing_does_not_stop_the_other(
    tmp_path: Path, photos: dict[str, bytes]
) -> None:
    from bot.errors import Transient
    from bot.x.sandbox import CREDENTIALS_ENV, SandboxX
    from tests.factories import on_sandbox

    with SandboxX(bot_username="forgerbot") as x:
        config = make_config(tmp_path, bot={"platforms": ["x", "memory"]}, x=on_sandbox(x))
        forger = Forger.create(config, CREDENTIALS_ENV, renderer=QuickRenderer(size=64), upgrade=True)
        try:
            world = forger.platforms["memory"]
            assert isinstance(world, MemoryPlatform) and sorted(forger.platforms) == ["memory", "x"]
            on_x = x.post("alice", "@forgerbot", images=[photos["coffee"], photos["chelsea"]])
            on_memory = world.publish("alice", "@forgerbot", photos=[photos["coffee"], photos["chelsea"]])

            reports = forger.poll()
            assert (reports["x"].queued, reports["memory"].queued) == (1, 1)
            assert forger.work() == 2
            assert len(x.replies_to(on_x)) == 1 and len(world.replies_to(on_memory)) == 1
            with forger.sessions() as s:
                # Same name on two platforms: two people, each with their own quota.
                assert jobs.by_post(s, "x", on_x).user_id != jobs.by_post(s, "memory", on_memory).user_id  # type: ignore[union-attr]

            # X is down: its poll fails, and the memory platform is still read and answered.
            x.fail("GET /2/users/:id/mentions", 503, times=5)
            later = world.publish("bob", "@forgerbot hello?")
            with pytest.raises(Transient):
                forger.poll()
            assert [p.text for p in world.replies_to(later)] == [f"@bob {HOWTO}"]
        finally:
            forger.close()
