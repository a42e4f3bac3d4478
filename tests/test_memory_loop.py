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
from bot.config import load_config
from bot.errors import ConfigError, ForgerError
from bot.memory import MemoryPlatform
from bot.refusals import HOWTO
from bot.rendering import QuickRenderer
from storage import cursors, jobs, replies
from storage.models import JobState

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def forger(tmp_path: Path) -> Iterator[Forger]:
    config = load_config(ROOT / "config.yaml")
    config = config.replace(
        bot=replace(config.bot, platform="memory"),
        database=replace(config.database, url=f"sqlite:///{tmp_path / 'forger.sqlite3'}"),
    )
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
    with pytest.raises(ConfigError, match="bot.platform must be one of memory, x, got: 'myspace'"):
        platforms.factory("myspace")


def test_a_mention_is_painted_and_answered_with_its_picture_once(
    forger: Forger, world: MemoryPlatform, photos: dict[str, bytes]
) -> None:
    ask = world.publish("alice", "@forgerbot like the starry night, please", photos=[photos["coffee"]])
    bare = world.publish("bob", "@forgerbot hello?")

    report = forger.poll()
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
    assert forger.deliver().sent == 1 and len(world.replies_to(ask)) == 1
    with forger.sessions() as s:
        assert jobs.by_post(s, "memory", ask).state is JobState.REPLIED  # type: ignore[union-attr]


def test_a_render_worker_needs_only_the_database(tmp_path: Path, photos: dict[str, bytes]) -> None:
    config = load_config(ROOT / "config.yaml")  # bot.platform is x, and there are no X keys here
    config = config.replace(database=replace(config.database, url=f"sqlite:///{tmp_path / 'forger.sqlite3'}"))
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
