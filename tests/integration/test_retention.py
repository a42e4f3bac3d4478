"""Data has a lifetime: photos and results deleted after ``retention.images_days``, gallery paintings
referenced instead of copied, old ledger and job-event rows rolled up into days, the database's
size measured. On SQLite and PostgreSQL (the ``sessions`` fixture)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from bot import results
from bot.app import Forger
from bot.cli import main
from bot.gallery import Gallery
from bot.memory import MemoryPlatform
from bot.rendering import QuickRenderer
from tests.factories import make_config, write_config
from bot.retention import Retention, prune
from storage import jobs, ledger, retention
from storage.db import database_size
from storage.errors import ImagesDeleted
from storage.models import ApiCall, ApiCallDay, Job, JobEvent, JobEventDay, JobState

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
KEEP = Retention(images_days=7, rollup_days=90)


def _job(session: Session, n: int, *, state: JobState, finished_days_ago: float | None, style: bytes | None = b"s",
         painting: str | None = None) -> int:
    job = jobs.enqueue(session, content_image=b"photo-%d" % n, style_image=style, style_painting=painting)
    job.state = state
    job.result_image = b"result-%d" % n if state is JobState.REPLIED else None
    job.finished_at = NOW - timedelta(days=finished_days_ago) if finished_days_ago is not None else None
    session.flush()
    return job.id


def _images(session: Session, job_id: int) -> tuple[bytes | None, bytes | None, bytes | None]:
    row = session.execute(select(Job.content_image, Job.style_image, Job.result_image).where(Job.id == job_id)).one()
    return row[0], row[1], row[2]


def test_photos_and_results_are_deleted_a_week_after_their_job_finished(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        old = _job(s, 1, state=JobState.REPLIED, finished_days_ago=8)
        failed = _job(s, 2, state=JobState.FAILED, finished_days_ago=30)
        recent = _job(s, 3, state=JobState.REPLIED, finished_days_ago=6)
        waiting = _job(s, 4, state=JobState.QUEUED, finished_days_ago=None)
        s.execute(Job.__table__.update().where(Job.id == waiting).values(created_at=NOW - timedelta(days=60)))

    report = prune(sessions, Gallery.load(), KEEP, now=NOW)

    assert report.images_deleted == 2
    with sessions() as s:
        assert _images(s, old) == _images(s, failed) == (None, None, None)
        assert _images(s, recent) == (b"photo-3", b"s", b"result-3")
        assert _images(s, waiting) == (b"photo-4", b"s", None)  # still to be painted: kept, however old
        assert s.get_one(Job, old).images_deleted_at == NOW and s.get_one(Job, old).state is JobState.REPLIED
    assert prune(sessions, Gallery.load(), KEEP, now=NOW).images_deleted == 0  # done once
    with sessions.begin() as s, pytest.raises(ImagesDeleted, match="photos were deleted on 2026-12-02"):
        jobs.retry(s, failed, reason="an admin")


def test_a_job_names_its_gallery_painting_and_copies_stored_before_become_references(
    sessions: sessionmaker[Session],
) -> None:
    gallery = Gallery.load()
    starry = gallery.named("the starry night")
    assert starry is not None
    with sessions.begin() as s:
        copied = _job(s, 1, state=JobState.QUEUED, finished_days_ago=None, style=starry.image())
        own = _job(s, 2, state=JobState.QUEUED, finished_days_ago=None, style=b"x" * len(starry.image()))
        named = _job(s, 3, state=JobState.QUEUED, finished_days_ago=None, style=None, painting=starry.key)

    assert prune(sessions, gallery, KEEP, now=NOW).paintings_referenced == 1

    with sessions() as s:
        assert (s.get_one(Job, copied).style_image, s.get_one(Job, copied).style_painting) == (None, "the starry night")
        assert s.get_one(Job, own).style_painting is None  # a painting someone sent: theirs, kept
        assert s.get_one(Job, named).style_image is None
    with sessions.begin() as s, pytest.raises(ValueError, match="one of the two"):
        jobs.enqueue(s, content_image=b"p", style_image=b"s", style_painting="the starry night")


def test_ledger_and_event_rows_past_90_days_become_daily_sums(sessions: sessionmaker[Session]) -> None:
    old = NOW - timedelta(days=100)
    with sessions.begin() as s:
        for minutes, cost in ((0, 0.5), (5, 0.25), (60 * 25, 1.0)):  # two calls one day, one the next
            ledger.record_call(s, "x", "GET mentions", status=200, cost_usd=cost, now=old + timedelta(minutes=minutes))
        ledger.record_call(s, "x", "GET mentions", status=200, cost_usd=2.0, now=NOW - timedelta(days=1))
        job = _job(s, 1, state=JobState.QUEUED, finished_days_ago=None)
        s.execute(JobEvent.__table__.update().where(JobEvent.job_id == job).values(at=old))
        s.add(JobEvent(job_id=job, from_state=JobState.QUEUED, to_state=JobState.RENDERING, reason="c", at=NOW))
    with sessions() as s:
        chart = ledger.calls_by_day(s, since=NOW - timedelta(days=365))

    report = prune(sessions, Gallery.load(), KEEP, now=NOW)
    again = prune(sessions, Gallery.load(), KEEP, now=NOW)

    assert (report.calls_rolled_up, report.events_rolled_up) == (3, 1)
    assert (again.calls_rolled_up, again.events_rolled_up) == (0, 0)
    with sessions() as s:
        assert ledger.calls_by_day(s, since=NOW - timedelta(days=365)) == chart  # the chart is the same
        assert [(d.day, d.calls, d.cost_usd) for d in s.scalars(select(ApiCallDay).order_by(ApiCallDay.day))] == [
            (old.date(), 2, 0.75), ((old + timedelta(days=1)).date(), 1, 1.0)]
        assert len(s.scalars(select(ApiCall)).all()) == 1  # yesterday's call is kept as it was
        assert [(d.day, d.to_state, d.events) for d in s.scalars(select(JobEventDay))] == [
            (old.date(), JobState.QUEUED, 1)]
        assert [e.to_state for e in jobs.history(s, job)] == [JobState.RENDERING]
        assert ledger.spent(s, platform="x", now=NOW) == 2.0


def test_the_database_size_is_measured(engine: Engine, sessions: sessionmaker[Session]) -> None:
    empty = database_size(engine)
    with sessions.begin() as s:
        for n in range(4):
            jobs.enqueue(s, content_image=random.Random(n).randbytes(1_000_000), style_image=b"s")  # as photos: no compression

    assert empty > 0 and database_size(engine) >= empty + 3_000_000


@pytest.fixture
def forger(tmp_path: Path) -> Iterator[Forger]:
    config = make_config(tmp_path, bot={"platforms": ["memory"]})
    bot = Forger.create(config, {}, renderer=QuickRenderer(size=64), upgrade=True)
    yield bot
    bot.close()


def test_a_lone_photo_job_stores_no_copy_of_its_painting_and_is_credited(forger: Forger, samples: Path) -> None:
    world = forger.platform
    assert isinstance(world, MemoryPlatform)
    ask = world.publish("alice", "@forgerbot the scream please", photos=[(samples / "coffee.jpg").read_bytes()])
    forger.poll()
    with forger.sessions() as s:
        job = jobs.by_post(s, "memory", ask)
        assert job is not None and (job.style_image, job.style_painting) == (None, "the scream")

    assert forger.work() == 1

    [answer] = world.replies_to(ask)
    assert "after The Scream, Edvard Munch" in answer.text and world.image_of(answer.id) is not None


def test_forger_db_prune_applies_the_configured_retention(forger: Forger, tmp_path: Path) -> None:
    with forger.sessions.begin() as s:
        old = _job(s, 1, state=JobState.REPLIED, finished_days_ago=3)
    # The setting is what counts: 2 days.
    config = write_config(tmp_path / "config.yaml", tmp_path, bot={"platforms": ["memory"]}, retention={"images_days": 2})

    result = CliRunner().invoke(main, ["--config", str(config), "db", "prune", "--vacuum"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("images of 1 jobs deleted, 0 gallery copies referenced")
    assert "MB before" in result.output
    with forger.sessions() as s:
        assert _images(s, old) == (None, None, None)
        assert retention.image_bytes(s) == 0


def test_a_job_whose_painting_left_the_gallery_fails_plainly(forger: Forger, samples: Path) -> None:
    with forger.sessions.begin() as s:
        job = jobs.enqueue(s, content_image=(samples / "coffee.jpg").read_bytes(), style_painting="a lost painting")
    forger.work()
    with forger.sessions() as s:
        failed = s.get_one(Job, job.id)
        assert failed.state is JobState.FAILED and "no painting 'a lost painting'" in (failed.error or "")
    assert results.painting_of(jobs.ClaimedJob(  # and nothing is credited to a painting it cannot find
        id=1, platform=None, post_ref=None, author_username=None, content_image=b"", style_image=None,
        style_painting="a lost painting", attempts=1, lease_owner="w", result_image=None, render_s=None,
        options=None), Gallery.load()) is None
