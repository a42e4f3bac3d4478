"""Forger on Bluesky, against a real AT Protocol network on loopback (npm's ``@atproto/dev-env``:
the PLC directory, a PDS, the AppView; ``tests/bluesky_world.py`` starts it).

The acceptance tests of issue 20: login and the session; two photos painted and answered in the
thread; one photo and a gallery name; a photo in reply to a photo; help and refusals; a deleted
post, a user who blocks the bot, a closed thread; the poller and the deliverer killed (-9)
mid-way; and one ``forger run`` answering on X and Bluesky from one queue. Each test has a bot
account of its own, so no test reads another's mentions.
"""

from __future__ import annotations

import io
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import create_engine, func, select

from bot import compose, poller, worker
from bot import replies as outbox
from bot.app import Forger
from bot.bluesky import richtext
from bot.bluesky.client import Session
from bot.bluesky.platform import MAX_BLOB_BYTES, BlueskyPlatform
from bot.errors import AuthError
from bot.gallery import Gallery
from bot.platform import Image as PostImage
from bot.refusals import HOWTO
from bot.rendering import QuickRenderer
from storage import jobs, replies, schema
from storage.db import open_engine
from storage.models import ApiCall, Cursor, Job, JobState, RateWindow, Reply
from tests.bluesky_world import Network, Person, jpeg, missing, start_network, wait_for
from tests.factories import make_config, write_config

pytestmark = pytest.mark.bluesky
ROOT = Path(__file__).resolve().parents[2]
ASKS = 6


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """The network, once for the session; in CI it must run (``.ci/run`` installs and starts what it needs)."""
    ci = bool(os.environ.get("CI"))
    lacking = missing()
    if lacking is None and not os.environ.get("FORGER_TEST_POSTGRES_URL"):
        lacking = "FORGER_TEST_POSTGRES_URL is not set (the network keeps its data in PostgreSQL; see .ci/postgres)"
    if lacking is not None:
        if ci:
            pytest.fail(f"in CI the Bluesky tests must run: {lacking}")
        pytest.skip(lacking)
    with start_network(os.environ["FORGER_TEST_POSTGRES_URL"], tmp_path_factory.mktemp("bluesky")) as net:
        yield net


@pytest.fixture
def bot(network: Network) -> Person:
    return Person(network, "forger")


@pytest.fixture
def password(bot: Person) -> str:
    return bot.app_password()


def bluesky_section(network: Network, bot: Person) -> dict[str, Any]:
    return {"handle": bot.handle, "service_url": network.pds, "plc_url": network.plc, "timeout_s": 10.0}


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database at the current schema, copied for each test (migrating each is slower)."""
    path = tmp_path_factory.mktemp("template") / "forger.sqlite3"
    engine = open_engine(f"sqlite:///{path}", create=True)
    schema.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def forger(tmp_path: Path, network: Network, bot: Person, password: str, migrated: Path) -> Iterator[Forger]:
    shutil.copy(migrated, tmp_path / "forger.sqlite3")
    config = make_config(tmp_path, bot={"platforms": ["bluesky"]}, bluesky=bluesky_section(network, bot))
    made = Forger.create(config, {"BLUESKY_APP_PASSWORD": password}, renderer=QuickRenderer(size=96))
    yield made
    made.close()


@pytest.fixture(scope="session")
def photos(samples: Path, paintings: Path) -> dict[str, bytes]:
    return {
        "coffee": (samples / "coffee.jpg").read_bytes(),
        "chelsea": (samples / "chelsea.jpg").read_bytes(),
        "starry": (paintings / "starry_night.jpg").read_bytes(),
    }


def platform_of(forger: Forger) -> BlueskyPlatform:
    platform = forger.platforms["bluesky"]
    assert isinstance(platform, BlueskyPlatform)
    return platform


def poll_until(forger: Forger, seen: int) -> None:
    """Poll until ``seen`` new mentions were read (the AppView lists one a moment after it is made)."""
    total = 0

    def more() -> bool:
        nonlocal total
        total += forger.poll()["bluesky"].seen
        return total >= seen

    wait_for(more, f"{seen} mentions to be read")


def the_reply(person: Person, uri: str, bot: Person) -> dict[str, Any]:
    """The bot's one reply to ``uri``, as the AppView shows it in the thread."""
    found = wait_for(lambda: person.replies(uri, by=bot.did), f"the bot's reply to {uri}")
    assert len(found) == 1, found
    return found[0]


def test_the_bot_logs_in_with_its_app_password_and_keeps_its_session(
    forger: Forger, bot: Person, network: Network, caplog: pytest.LogCaptureFixture, password: str
) -> None:
    caplog.set_level(logging.DEBUG)
    platform = platform_of(forger)
    account = platform.me()
    assert (account.id, account.handle) == (bot.did, bot.handle)

    # An access token the PDS no longer takes is refreshed; a refresh token it refuses, a new login.
    session = platform.client.session
    platform.client._session = Session(session.did, session.handle, "not-a-token", session.refresh_jwt)
    assert platform.mentions(since=None).mentions == []
    assert platform.client.session.access_jwt != "not-a-token"
    platform.client._session = Session(session.did, session.handle, "not-a-token", "not-a-token-either")
    assert platform.mentions(since=None).mentions == []
    assert platform.client.session.refresh_jwt != "not-a-token-either"

    # A wrong password is a configuration error, said once, with no secret in it.
    wrong = make_config(forger.config.paths.data_dir.parent, bot={"platforms": ["bluesky"]},
                        bluesky=bluesky_section(network, bot))
    other = Forger.create(wrong, {"BLUESKY_APP_PASSWORD": "wrong-password"}, renderer=QuickRenderer(), upgrade=True)
    try:
        with pytest.raises(AuthError) as refused:
            other.platforms["bluesky"].me()
        assert "wrong-password" not in str(refused.value)
    finally:
        other.close()
    logged = caplog.text + repr(platform.client) + repr(platform.client.session)
    assert password not in logged and platform.client.session.access_jwt not in logged
    assert platform.client.session.refresh_jwt not in logged


def test_a_mention_with_two_photos_gets_a_painted_reply_in_its_thread(
    forger: Forger, bot: Person, network: Network, photos: dict[str, bytes]
) -> None:
    alice = Person(network, "alice")
    ask = alice.post(f"@{bot.handle} paint my coffee like my cat, please", photos=[photos["coffee"], photos["chelsea"]],
                     mentions=[bot])
    poll_until(forger, 1)
    with forger.sessions() as s:
        job = jobs.by_post(s, "bluesky", ask)
        assert job is not None and job.author_username == alice.handle
        assert (job.content_image, job.style_image) == (photos["coffee"], photos["chelsea"])  # from alice's PDS
    assert forger.work() == 1

    reply = the_reply(alice, ask, bot)
    record = reply["record"]
    parent = alice.view(ask)
    assert parent is not None
    assert record["reply"] == {"root": {"uri": ask, "cid": parent["cid"]}, "parent": {"uri": ask, "cid": parent["cid"]}}
    assert record["text"] == compose.result_text(None, username=alice.handle, number=job.id)
    mention = f"@{alice.handle}"
    assert record["facets"] == [{
        "index": {"byteStart": 0, "byteEnd": len(mention.encode())},
        "features": [{"$type": "app.bsky.richtext.facet#mention", "did": alice.did}],
    }]
    image = record["embed"]["images"][0]
    assert image["alt"] == compose.alt_text(None)
    painted = alice.blob(bot.did, image["image"]["ref"]["$link"])
    with Image.open(io.BytesIO(painted)) as opened:
        assert image["aspectRatio"] == {"width": opened.width, "height": opened.height}
    with forger.sessions() as s:
        assert jobs.get(s, job.id).state is JobState.REPLIED and jobs.get(s, job.id).reply_ref == reply["uri"]
        cursor = s.get(Cursor, ("bluesky", "mentions"))
        assert cursor is not None and cursor.value.endswith("Z")
        assert (s.scalar(select(func.count()).select_from(ApiCall).where(ApiCall.platform == "bluesky")) or 0) > 0
        # The PDS's write window, from its headers, is in the ledger that every process reads.
        window = s.get(RateWindow, ("bluesky", "POST com.atproto.repo.createRecord"))
        assert window is not None and 0 < window.remaining < window.limit
    assert platform_of(forger).resolver.pds(alice.did) == network.pds  # whose PDS keeps her photos
    # Recorded, then marked seen: the bot's account has nothing unread.
    assert bot.client.get("app.bsky.notification.getUnreadCount")["count"] == 0

    # Polled again: nothing new, nothing answered twice.
    assert forger.poll()["bluesky"].seen == 0
    assert len(alice.replies(ask, by=bot.did)) == 1


def test_one_photo_and_a_paintings_name_is_painted_in_that_painting(
    forger: Forger, bot: Person, network: Network, photos: dict[str, bytes]
) -> None:
    bob = Person(network, "bob")
    ask = bob.post(f"@{bot.handle} the scream please", photos=[photos["chelsea"]], mentions=[bot])
    poll_until(forger, 1)
    painting = Gallery.load(()).find("the scream")
    assert painting is not None
    with forger.sessions() as s:
        job = jobs.by_post(s, "bluesky", ask)
        assert job is not None and job.style_painting == painting.key  # referenced, not copied
    assert forger.work() == 1
    reply = the_reply(bob, ask, bot)
    assert reply["record"]["text"] == compose.result_text(painting, username=bob.handle, number=job.id)
    assert painting.credit in reply["record"]["text"]
    assert reply["record"]["embed"]["images"][0]["alt"] == compose.alt_text(painting)


def test_a_photo_in_reply_to_a_photo_paints_the_parents_photo(
    forger: Forger, bot: Person, network: Network, photos: dict[str, bytes]
) -> None:
    alice, bob = Person(network, "alice"), Person(network, "bob")
    original = alice.post("my cat", photos=[photos["chelsea"]])
    ask = bob.post(f"@{bot.handle} this one", photos=[photos["starry"]], reply_to=original, mentions=[bot])
    poll_until(forger, 1)
    with forger.sessions() as s:
        job = jobs.by_post(s, "bluesky", ask)
        assert job is not None
        assert (job.content_image, job.style_image) == (photos["chelsea"], photos["starry"])
    assert forger.work() == 1
    reply = the_reply(bob, ask, bot)
    root, parent = alice.view(original), bob.view(ask)
    assert root is not None and parent is not None
    assert reply["record"]["reply"] == {"root": {"uri": original, "cid": root["cid"]},
                                        "parent": {"uri": ask, "cid": parent["cid"]}}


def test_help_and_refusals_are_answered_and_talk_in_the_thread_is_not(
    forger: Forger, bot: Person, network: Network, photos: dict[str, bytes]
) -> None:
    alice, bob, carol = Person(network, "alice"), Person(network, "bob"), Person(network, "carol")
    helped = alice.post(f"@{bot.handle} help", mentions=[bot])
    bare = bob.post(f"@{bot.handle} hello?", mentions=[bot])
    many = carol.post(f"@{bot.handle} all of these", photos=[photos["coffee"]] * 3, mentions=[bot])
    poll_until(forger, 3)
    names = [p.nickname for p in forger.policy.gallery.paintings]
    assert the_reply(alice, helped, bot)["record"]["text"] == compose.addressed(alice.handle, compose.help_text(names))
    how = the_reply(bob, bare, bot)["record"]
    assert how["text"] == compose.addressed(bob.handle, HOWTO)
    assert how["facets"][0]["features"][0]["did"] == bob.did
    assert "3 photos" in the_reply(carol, many, bot)["record"]["text"]

    # A reply to the bot's answer that does not ask it anything: read, and left alone.
    thanks = bob.post("ok thanks", reply_to=the_reply(bob, bare, bot)["uri"])
    poll_until(forger, 1)
    with forger.sessions() as s:
        assert replies.for_post(s, "bluesky", thanks) == []
    assert forger.work() == 0


def test_a_deleted_post_a_blocking_user_and_a_closed_thread_get_no_reply_and_no_retry(
    forger: Forger, bot: Person, network: Network, photos: dict[str, bytes]
) -> None:
    alice, bob, carol = Person(network, "alice"), Person(network, "bob"), Person(network, "carol")
    deleted = alice.post(f"@{bot.handle}", photos=[photos["coffee"], photos["starry"]], mentions=[bot])
    blocked = bob.post(f"@{bot.handle} hi", mentions=[bot])
    closed = carol.post(f"@{bot.handle} hi", mentions=[bot])
    carol.client.post("com.atproto.repo.createRecord", {  # a threadgate that lets nobody reply
        "repo": carol.did, "collection": "app.bsky.feed.threadgate", "rkey": closed.rsplit("/", 1)[1],
        "record": {"$type": "app.bsky.feed.threadgate", "post": closed, "allow": [], "createdAt": "2026-01-01T00:00:00Z"},
    })
    # Read before they were deleted or blocked: the replies are owed, and the world changes.
    total = 0

    def read() -> bool:
        nonlocal total
        total += poller.poll(forger.sessions, platform_of(forger), limits=forger.limits, policy=forger.policy).seen
        return total >= 3

    wait_for(read, "three mentions")
    alice.delete(deleted)
    bob.block(bot)
    wait_for(lambda: alice.view(deleted) is None, "the deletion to reach the AppView")
    # The AppView indexes the block and the gate a moment after they are made.
    wait_for(lambda: bot.view(blocked) is None, "the block to reach the AppView")
    wait_for(lambda: (bot.view(closed) or {}).get("viewer", {}).get("replyDisabled"), "the gate to reach the AppView")
    assert forger.work() == 1
    forger.deliver()

    def calls() -> int:
        with forger.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(ApiCall)) or 0)

    made = calls()
    forger.deliver()  # each was given up at its first refusal: no retry storm
    assert calls() == made
    with forger.sessions() as s:
        owed = {r.in_reply_to_ref: r for r in s.scalars(select(Reply).where(Reply.platform == "bluesky"))}
        assert {ref: r.reply_ref for ref, r in owed.items()} == {deleted: None, blocked: None, closed: None}
        assert "deleted or not visible" in (owed[deleted].error or "")
        assert "not visible" in (owed[blocked].error or "")  # a blocking author's posts are hidden from the bot
        assert "does not let the bot reply" in (owed[closed].error or "")
        job = jobs.by_post(s, "bluesky", deleted)
        assert job is not None and job.state is JobState.FAILED
        assert replies.unsent(s, platform="bluesky", max_attempts=3) == []
    posted = bot.client.get("com.atproto.repo.listRecords", repo=bot.did, collection="app.bsky.feed.post")
    assert posted["records"] == []


def test_a_spent_write_window_holds_every_post_until_its_reset(forger: Forger, bot: Person, network: Network) -> None:
    from bot.errors import RateLimited

    alice = Person(network, "alice")
    ask = alice.post(f"@{bot.handle} hello?", mentions=[bot])
    # Read without delivering: the window is spent before the reply goes.
    wait_for(lambda: poller.poll(forger.sessions, platform_of(forger), limits=forger.limits,
                                 policy=forger.policy).seen, "the mention")
    platform = platform_of(forger)
    reset = int(time.time()) + 600
    assert platform.ledger is not None
    platform.ledger.record("POST com.atproto.repo.createRecord", status=200, headers={
        "ratelimit-limit": "5000", "ratelimit-remaining": "0", "ratelimit-reset": str(reset)})
    assert platform.blocked_until("write") == reset
    assert forger.deliver()["bluesky"].sent == 0
    with pytest.raises(RateLimited) as held:
        platform.reply(ask, "@x hi")
    assert held.value.until == reset
    with forger.sessions() as s:
        [owed] = replies.for_post(s, "bluesky", ask)
        assert owed.reply_ref is None and owed.attempts == 0  # waiting is not a failed attempt
    assert alice.replies(ask, by=bot.did) == []


def test_a_picture_over_blueskys_limit_goes_up_downscaled_within_it(
    forger: Forger, bot: Person, network: Network
) -> None:
    alice = Person(network, "alice")
    target = alice.post("noise")
    noise = Image.frombytes("RGB", (1400, 1400), random.Random(1).randbytes(1400 * 1400 * 3))
    out = io.BytesIO()
    noise.save(out, "JPEG", quality=98)
    assert len(out.getvalue()) > MAX_BLOB_BYTES
    platform = platform_of(forger)
    uri = platform.reply(target, "@x look", image=PostImage(out.getvalue(), alt_text="noise"))
    view = wait_for(lambda: alice.view(uri), "the reply")
    image = view["record"]["embed"]["images"][0]
    assert image["image"]["size"] <= MAX_BLOB_BYTES and image["alt"] == "noise"
    # The outbox fits every picture to the platform's limit before it is posted.
    assert platform.limits.image_bytes == MAX_BLOB_BYTES
    # And the exactly-once check finds it: a second attempt posts nothing.
    assert platform.find_reply(target, with_image=True) == uri
    assert platform.find_reply(target, text="@x look") is None  # carries an image: not a text reply


def test_mention_facets_count_utf8_bytes_and_texts_fit_300_graphemes() -> None:
    text = "é 👩‍👩‍👧 @alice.test!"
    [facet] = richtext.mention_facets(text, {"alice.test": "did:plc:alice"})
    start = len("é 👩‍👩‍👧 ".encode())
    assert facet["index"] == {"byteStart": start, "byteEnd": start + len(b"@alice.test")}
    assert richtext.mention_facets("mail@alice.test", {"alice.test": "did:plc:alice"}) == []
    family = "👩‍👩‍👧" * 400  # one grapheme each, of 18 bytes
    clipped = richtext.clip(family)
    assert clipped.endswith("…") and len(clipped.encode()) <= richtext.MAX_BYTES
    assert richtext.clip("x" * 300) == "x" * 300 and len(richtext.clip("x" * 301)) == 300


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.02)


def _kill_when(victim: subprocess.Popen[bytes], moment: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    """SIGKILL ``victim`` at ``moment``: frozen first (SIGSTOP), so the check cannot race it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if victim.poll() is not None:
            raise AssertionError(f"the process ended before {what}: {victim.communicate()[1].decode()[-2000:]}")
        victim.send_signal(signal.SIGSTOP)
        if moment():
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            return
        victim.send_signal(signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError(f"never saw {what}")


@pytest.mark.slow
def test_a_poller_and_a_deliverer_killed_mid_way_lose_no_mention_and_double_no_reply(
    tmp_path: Path, network: Network, bot: Person, password: str, migrated: Path
) -> None:
    people = [Person(network, f"p{n}") for n in range(3)]
    asks = [people[n % 3].post(f"@{bot.handle} #{n}", photos=[jpeg((40 * n, 90, 160)), jpeg((200, 30 * n, 40))],
                               mentions=[bot]) for n in range(ASKS)]
    db = f"sqlite:///{tmp_path / 'forger.sqlite3'}"
    section = bluesky_section(network, bot)
    config = write_config(tmp_path / "config.yaml", tmp_path, bot={"platforms": ["bluesky"]}, bluesky=section)
    env = {**os.environ, "BLUESKY_APP_PASSWORD": password}
    cli = [sys.executable, "-m", "bot.cli", "--config", str(config)]
    shutil.copy(migrated, tmp_path / "forger.sqlite3")
    forger = Forger.create(make_config(tmp_path, bot={"platforms": ["bluesky"]}, bluesky=section),
                           {"BLUESKY_APP_PASSWORD": password}, renderer=QuickRenderer(size=96))
    watcher = create_engine(db)  # a plain WAL reader: it never waits on a frozen process's lock

    def count(query: Any) -> int:
        with watcher.connect() as c:
            return int(c.scalar(query) or 0)

    def calls(endpoint: str) -> Any:
        return select(func.count()).select_from(ApiCall).where(ApiCall.endpoint == endpoint)

    listed, created = calls("GET app.bsky.notification.listNotifications"), calls("POST com.atproto.repo.createRecord")
    cursor_set = select(func.count()).select_from(Cursor)
    sent = select(func.count()).select_from(Reply).where(Reply.reply_ref.is_not(None))
    claimed = select(func.count()).select_from(Reply).where(Reply.claimed_by.is_not(None), Reply.reply_ref.is_(None))
    processes: list[subprocess.Popen[bytes]] = []

    def start(*command: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([*cli, *command], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        processes.append(process)
        return process

    try:
        wait_for(lambda: len(bot.client.get("app.bsky.notification.listNotifications")["notifications"]) >= ASKS,
                 "the mentions to be listed")
        # The poller, killed after it read the mentions and before it recorded them.
        _kill_when(start("poll"), lambda: count(listed) > 0 and count(cursor_set) == 0, "a poll read, not recorded")
        assert count(select(func.count()).select_from(Job)) == 0
        # The next poller reads every one of them again.
        report = poller.poll(forger.sessions, platform_of(forger), limits=forger.limits, policy=forger.policy)
        assert report.queued == ASKS
        # A worker paints them all; their results are owed to the outbox.
        while worker.work_once(forger.sessions, forger.renderer, forger.lease, gallery=forger.policy.gallery):
            pass
        assert count(select(func.count()).select_from(Job).where(Job.state == JobState.UPLOADING)) == ASKS
        # The deliverer, killed mid-post: at best between posting a reply and recording it.
        deliverer = start("deliver")
        _kill_when(deliverer, lambda: count(created) > count(sent) or (count(sent) >= ASKS // 2 and count(claimed) > 0),
                   "a reply being posted")
        posted_unrecorded = count(created) > count(sent)
        # The claim of the killed deliverer lapses; the next one posts the rest, each once.
        later = time.time() + 2 * replies.CLAIM.total_seconds()
        outbox.deliver(forger.sessions, platform_of(forger), by="second deliverer", max_attempts=3, clock=lambda: later)
        with forger.sessions() as s:
            assert jobs.counts(s)[JobState.REPLIED] == ASKS, jobs.counts(s)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        errors = [process.communicate(timeout=20)[1].decode() for process in processes]
        forger.close()
        watcher.dispose()

    mine = bot.client.get("com.atproto.repo.listRecords", repo=bot.did, collection="app.bsky.feed.post", limit=100)
    answered = sorted(r["value"]["reply"]["parent"]["uri"] for r in mine["records"])
    assert answered == sorted(asks), "each mention answered exactly once"
    assert all("Traceback" not in e for e in errors), errors
    print(f"the deliverer was killed {'between posting a reply and recording it' if posted_unrecorded else 'mid-post'}")


def test_forger_run_answers_on_x_and_bluesky_from_one_queue(
    tmp_path: Path, network: Network, bot: Person, password: str, photos: dict[str, bytes], migrated: Path
) -> None:
    from bot.x.sandbox import CREDENTIALS_ENV, SandboxX
    from tests.factories import on_sandbox

    alice = Person(network, "alice")
    with SandboxX(bot_username="forgerbot") as x:
        config = write_config(tmp_path / "config.yaml", tmp_path, bot={"platforms": ["x", "bluesky"], "poll_interval_s": 0.5},
                              x=on_sandbox(x), bluesky=bluesky_section(network, bot))
        on_x = x.post("alice", "@forgerbot", images=[photos["coffee"], photos["starry"]])
        on_bluesky = alice.post(f"@{bot.handle}", photos=[photos["coffee"], photos["starry"]], mentions=[bot])
        env = {**os.environ, **CREDENTIALS_ENV, "BLUESKY_APP_PASSWORD": password}
        cli = [sys.executable, "-m", "bot.cli", "--config", str(config)]
        shutil.copy(migrated, tmp_path / "forger.sqlite3")
        run = subprocess.Popen([*cli, "run", "--renderer", "quick"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: len(x.replies_to(on_x)) == 1 and alice.replies(on_bluesky, by=bot.did),
                     "a reply on each platform", timeout_s=60)
        finally:
            run.terminate()
            try:
                out, err = run.communicate(timeout=30)
            except subprocess.TimeoutExpired:  # it did not stop in time: kill it, and close its pipes
                run.kill()
                out, err = run.communicate()
        assert f"serving @forgerbot on x, @{bot.handle} on bluesky" in out.decode(), (out, err)
        assert x.replies_to(on_x)[0].media_keys
        assert the_reply(alice, on_bluesky, bot)["record"]["embed"]["images"]
        engine = create_engine(f"sqlite:///{tmp_path / 'forger.sqlite3'}")
        try:
            with engine.connect() as c:
                rows = c.execute(select(Job.platform, Job.state).order_by(Job.id)).all()
        finally:
            engine.dispose()
        assert sorted((platform, state) for platform, state in rows) == [
            ("bluesky", JobState.REPLIED), ("x", JobState.REPLIED)]
        assert "Traceback" not in err.decode(), err.decode()


def test_the_bluesky_section_and_the_app_password_are_checked(tmp_path: Path, migrated: Path) -> None:
    from bot.bluesky.settings import BlueskyCredentials
    from bot.errors import ConfigError

    section = {"handle": "forger.bsky.social", "service_url": "https://bsky.social",
               "plc_url": "https://plc.directory", "timeout_s": 5}
    config = make_config(tmp_path, bot={"platforms": ["bluesky"]}, bluesky=section)
    shutil.copy(migrated, tmp_path / "forger.sqlite3")
    with pytest.raises(ConfigError, match="BLUESKY_APP_PASSWORD"):
        Forger.create(config, {}, renderer=QuickRenderer())
    with pytest.raises(ConfigError, match="bluesky.handle must be a Bluesky handle"):
        make_config(tmp_path, bluesky={**section, "handle": "@forger"})
    with pytest.raises(ConfigError, match="missing key bluesky"):
        make_config(tmp_path, bot={"platforms": ["x", "bluesky"]})
    assert "s3cret" not in repr(BlueskyCredentials("s3cret"))


def test_a_quote_with_photos_counts_its_photos_a_video_is_no_photo_and_handles_are_not_words() -> None:
    from bot.bluesky import parsing
    from bot.interpret import Help, Refusal, RenderRequest, interpret
    from bot.refusals import RefusalKind

    blob = {"$type": "blob", "ref": {"$link": "bafkreiphoto"}, "mimeType": "image/jpeg", "size": 1000}
    author = {"did": "did:plc:alice", "handle": "alice.bsky.social"}
    quote = {"$type": parsing.RECORD_WITH_MEDIA, "record": {"record": {"uri": "at://x", "cid": "y"}},
             "media": {"$type": parsing.IMAGES, "images": [{"image": blob, "alt": ""}]}}
    post = parsing.post("at://did:plc:alice/app.bsky.feed.post/1", author,
                        {"text": "@forger.bsky.social starry night", "embed": quote, "createdAt": "2026-12-01T10:00:00.000Z"})
    [photo] = post.photos
    assert parsing.blob_of(photo) == ("did:plc:alice", "bafkreiphoto")
    gallery = Gallery.load(())
    decision = interpret(post, bot_user_id="did:plc:bot", gallery=gallery, bot_username="forger.bsky.social")
    assert isinstance(decision, RenderRequest) and decision.painting == gallery.find("starry night")

    video = {"$type": parsing.VIDEO, "video": {**blob, "mimeType": "video/mp4"}}
    clip = parsing.post("at://did:plc:alice/app.bsky.feed.post/2", author, {"text": "@forger.bsky.social", "embed": video})
    refused = interpret(clip, bot_user_id="did:plc:bot", gallery=gallery)
    assert isinstance(refused, Refusal) and refused.kind is RefusalKind.NOT_A_PHOTO
    asked = parsing.post("at://did:plc:alice/app.bsky.feed.post/3", author, {"text": "@forger.bsky.social help"})
    assert isinstance(interpret(asked, bot_user_id="did:plc:bot", gallery=gallery), Help)
