"""The whole loop over real HTTP: sandbox X -> poller -> SQLite -> worker -> reply in the sandbox.

The renderer is the quick colour-transfer one: these tests are about the bot, not the painting.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import text

from bot.app import Forger
from bot.cli import main
from tests.factories import make_config, on_sandbox
from bot.errors import RateLimited
from bot.refusals import HOWTO
from bot.rendering import QuickRenderer
from bot.scheduler import POLL_TICK_S, build_scheduler
from bot.x import dialect
from bot.x.platform import XPlatform
from bot.x.sandbox import CREDENTIALS_ENV, DIALECTS, SandboxX
from storage import cursors, jobs, platform_settings, replies
from storage.models import JobState

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def x(request: pytest.FixtureRequest) -> Iterator[SandboxX]:
    """X speaking its current names (posts), or those before (tweets) where a test asks for them."""
    with SandboxX(bot_username="forgerbot", dialect=getattr(request, "param", "posts")) as sandbox:
        yield sandbox


def make_forger(x: SandboxX, tmp_path: Path) -> Forger:
    config = make_config(tmp_path, x=on_sandbox(x))
    return Forger.create(config, CREDENTIALS_ENV, renderer=QuickRenderer(size=96), upgrade=True)


@pytest.fixture
def forger(x: SandboxX, tmp_path: Path) -> Iterator[Forger]:
    bot = make_forger(x, tmp_path)
    yield bot
    bot.close()


@pytest.fixture
def photos(samples: Path, paintings: Path) -> dict[str, bytes]:
    folders = {"coffee": samples, "starry_night": paintings, "chelsea": samples}
    return {name: (folder / f"{name}.jpg").read_bytes() for name, folder in folders.items()}


def _bot_replies(x: SandboxX, tweet_id: str) -> list:  # type: ignore[type-arg]
    return [t for t in x.replies_to(tweet_id) if t.author_id == x.bot_user_id]


@pytest.mark.parametrize("x", DIALECTS, indirect=True)
def test_a_mention_with_two_photos_gets_a_painted_reply(x: SandboxX, forger: Forger, photos: dict[str, bytes]) -> None:
    ask = x.post("alice", "@forgerbot paint me!", images=[photos["coffee"], photos["starry_night"]])
    lone = x.post("bob", "@forgerbot hi", images=[photos["chelsea"]])
    bare = x.post("carol", "@forgerbot what are you?")

    report = forger.poll()["x"]
    assert (report.seen, report.queued, report.refused) == (3, 2, 1)
    assert forger.work() == 2

    [painted] = _bot_replies(x, ask)
    # The painting sent is the gallery's own Starry Night, byte for byte: it is credited as such.
    # Addressed and numbered (X refuses a text the bot posted a while ago); X links the picture at the end.
    assert re.fullmatch(r"@alice Here is your picture no\. \d+, painted after The Starry Night, Vincent van Gogh, "
                        r"1889\. https://t\.co/\w+", painted.text)
    assert painted.in_reply_to_tweet_id == ask
    assert painted.made_with_ai and x.media(painted.media_keys[0]).alt_text
    [key] = painted.media_keys
    image = Image.open(io.BytesIO(x.media(key).data))
    image.load()
    assert image.format == "JPEG" and max(image.size) == 96

    [lone_painted] = _bot_replies(x, lone)  # a lone photo gets a gallery painting, credited
    assert lone_painted.text.startswith("@bob Here is your picture no. ") and lone_painted.media_keys
    [how_bare] = _bot_replies(x, bare)
    assert how_bare.text == f"@carol {HOWTO}"

    with forger.sessions() as s:
        job = jobs.by_post(s, "x", ask)
        assert job is not None and job.state is JobState.REPLIED
        assert job.reply_ref == painted.id and job.author_username == "alice"
        assert job.content_image == photos["coffee"] and job.style_image == photos["starry_night"]


@pytest.mark.parametrize("x", DIALECTS, indirect=True)
def test_the_dialect_x_takes_is_found_once_and_kept_across_restarts(
    x: SandboxX, tmp_path: Path, photos: dict[str, bytes]
) -> None:
    x.post("alice", "@forgerbot", images=[photos["coffee"], photos["starry_night"]])

    def reads() -> int:
        return sum(1 for method, path in x.requests_log if method == "GET" and path.endswith("/mentions"))

    first = make_forger(x, tmp_path)
    try:
        first.poll()
        first.work()
    finally:
        first.close()
    asked_first = reads()
    again = make_forger(x, tmp_path)  # a restart, or the bot's other process
    try:
        again.poll()
    finally:
        again.close()

    # X's current names are tried first; an X on the old ones refuses them once, never again.
    assert asked_first == (2 if x.dialect == "tweets" else 1) and reads() == asked_first + 1
    with again.sessions() as s:
        assert platform_settings.get(s, "x", dialect.SETTING) == (x.dialect if x.dialect == "tweets" else None)
    assert len(_bot_replies(x, x.tweets_by("alice")[0].id)) == 1


@pytest.mark.parametrize("x", DIALECTS, indirect=True)
def test_a_tweet_seen_twice_is_queued_and_answered_once(x: SandboxX, forger: Forger, photos: dict[str, bytes]) -> None:
    ask = x.post("alice", "@forgerbot", images=[photos["coffee"], photos["starry_night"]])
    bare = x.post("carol", "@forgerbot ?")
    forger.poll()
    with forger.sessions.begin() as s:  # as if the cursor had been lost: every mention comes back
        s.execute(text("DELETE FROM cursors"))
    again = forger.poll()["x"]
    assert again.seen == 0
    forger.work()
    forger.poll()
    assert len(_bot_replies(x, ask)) == 1 and len(_bot_replies(x, bare)) == 1
    with forger.sessions() as s:
        assert jobs.counts(s)[JobState.REPLIED] == 1
        assert cursors.get(s, "x", cursors.MENTIONS) == bare


def test_the_cursor_stays_when_queueing_fails(x: SandboxX, forger: Forger, photos: dict[str, bytes]) -> None:
    ask = x.post("alice", "@forgerbot", images=[photos["coffee"], photos["starry_night"]])
    with forger.engine.begin() as c:  # a real database failure on insert, e.g. a full disk
        c.execute(text("CREATE TRIGGER no_jobs BEFORE INSERT ON jobs BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
    with pytest.raises(Exception, match="disk full"):
        forger.poll()
    with forger.sessions() as s:
        assert cursors.get(s, "x", cursors.MENTIONS) is None
        assert jobs.by_post(s, "x", ask) is None
    with forger.engine.begin() as c:
        c.execute(text("DROP TRIGGER no_jobs"))
    assert forger.poll()["x"].queued == 1
    with forger.sessions() as s:
        assert cursors.get(s, "x", cursors.MENTIONS) == ask


def test_an_unpaintable_job_fails_and_the_user_is_told(x: SandboxX, forger: Forger, photos: dict[str, bytes]) -> None:
    ask = x.post("alice", "@forgerbot", images=[photos["coffee"], photos["starry_night"]])
    forger.poll()
    with forger.sessions.begin() as s:  # the stored picture is damaged
        s.execute(text("UPDATE jobs SET content_image = :junk"), {"junk": b"this is not an image"})
    forger.work()
    with forger.sessions() as s:
        job = jobs.by_post(s, "x", ask)
        assert job is not None and job.state is JobState.FAILED
        assert job.error and "not an image" in job.error
        [owed] = replies.for_post(s, "x", ask)
        assert owed.kind == "failure" and owed.reply_ref is not None
    [notice] = _bot_replies(x, ask)
    assert notice.text.startswith("@alice Sorry, I couldn't paint that") and not notice.media_keys


def test_a_used_up_rate_limit_is_reported_with_its_reset(tmp_path: Path) -> None:
    with SandboxX(bot_username="forgerbot", rate_limits={"GET /2/users/:id/mentions": 1}) as x:
        config = make_config(tmp_path, x=on_sandbox(x))
        forger = Forger.create(config, CREDENTIALS_ENV, renderer=QuickRenderer(), upgrade=True)
        try:
            forger.poll()
            with pytest.raises(RateLimited) as caught:
                forger.poll()
        finally:
            forger.close()
    assert caught.value.until is not None
    assert isinstance(forger.platform, XPlatform)
    assert forger.platform.client.rate_limits["GET /2/users/:id/mentions"].remaining == 0


def test_the_scheduler_polls_and_works_as_two_jobs(forger: Forger) -> None:
    scheduler = build_scheduler(forger)
    jobs_by_id = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs_by_id) == {"poll", "work", "prune"}  # the poller's process prunes, daily
    assert jobs_by_id["prune"].trigger.interval.total_seconds() == 86_400
    assert jobs_by_id["poll"].trigger.interval.total_seconds() == POLL_TICK_S  # it polls when its time comes


def test_cli_reports_a_config_error_without_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "missing.yaml"), "run"])
    assert result.exit_code == 1
    assert "missing.yaml: no such configuration file" in result.output
    assert "Traceback" not in result.output
