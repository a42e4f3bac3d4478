"""Crash safety: worker processes drain a queue while one of them is killed mid-job.

Three real ``forger work`` processes (quick renderer; the database URL and nothing else: no X
keys) and one ``forger deliver`` (the sandbox X over HTTP) share one database; one worker is sent
SIGKILL while it holds a job. Its lease lapses, another worker takes the job over, and every
mention ends with exactly one reply: none lost, none twice.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import Engine, create_engine, select

from bot.x.sandbox import SandboxX
from tests.factories import on_sandbox, write_config
from storage import jobs, posts
from storage.db import open_engine, session_factory
from storage.models import Job, JobState, Outcome

ROOT = Path(__file__).resolve().parents[2]
JOBS = 300
WORKERS = 3
LEASE_S = 5


def _png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (48, 32), colour).save(out, "PNG")
    return out.getvalue()


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.05)


def _kill_mid_job(victim: subprocess.Popen[bytes], holds_a_job: Callable[[], bool]) -> None:
    """SIGKILL ``victim`` while it holds a job: frozen first (SIGSTOP), so the check cannot race it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        victim.send_signal(signal.SIGSTOP)
        if holds_a_job():
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            return
        victim.send_signal(signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError("the first worker never held a job")


@pytest.mark.slow
def test_a_killed_worker_loses_no_job_and_doubles_no_reply(db_url: str, tmp_path: Path) -> None:
    engine = open_engine(db_url)
    try:
        _drain_while_one_worker_dies(engine, db_url, tmp_path)
    finally:
        engine.dispose()


def _drain_while_one_worker_dies(engine: Engine, db_url: str, tmp_path: Path) -> None:
    sessions = session_factory(engine)
    picture, painting = _png((220, 140, 60)), _png((30, 60, 170))
    # X's real windows (100 posts per 15 min) would hold most of 300 replies back: widen them.
    wide = {"POST /2/tweets": 10 * JOBS, "POST /2/media/upload": 10 * JOBS}
    with SandboxX(bot_username="forgerbot", rate_limits=wide) as x:
        tweets = [x.post(f"user{n % 40}", f"@forgerbot paint #{n}") for n in range(JOBS)]
        with sessions.begin() as s:
            for n, tweet in enumerate(tweets):
                posts.record(s, platform="x", post_ref=tweet, author_ref=str(n % 40), author_username=f"user{n % 40}",
                             text="", outcome=Outcome.QUEUED)
                s.flush()
                jobs.enqueue(s, platform="x", post_ref=tweet, author_username=f"user{n % 40}",
                             content_image=picture, style_image=painting)

        write_config(tmp_path / "config.yaml", x=on_sandbox(x), database={"url": db_url}, queue={"lease_s": LEASE_S})
        keys = {"X_API_KEY": "k", "X_API_SECRET": "s", "X_ACCESS_TOKEN": "t", "X_ACCESS_TOKEN_SECRET": "ts"}
        bare = {name: value for name, value in os.environ.items() if name not in keys}
        cli = [sys.executable, "-m", "bot.cli", "--config", str(tmp_path / "config.yaml")]
        workers = [subprocess.Popen([*cli, "work", "--renderer", "quick"], cwd=ROOT, env=bare,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                   for _ in range(WORKERS)]
        workers.append(subprocess.Popen([*cli, "deliver"], cwd=ROOT, env={**bare, **keys},
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        try:
            def replied() -> int:
                with sessions() as s:
                    return jobs.counts(s)[JobState.REPLIED]

            def painted() -> int:  # results are posted by the deliverer, later: count them painted
                with sessions() as s:
                    counts = jobs.counts(s)
                    return counts[JobState.UPLOADING] + counts[JobState.REPLIED]

            # Read through a plain engine: on SQLite, Forger's engine begins every transaction
            # IMMEDIATE, which would wait on a frozen worker's write lock; a plain WAL read does not.
            watcher = create_engine(db_url)

            def held_by_victim() -> bool:
                with watcher.connect() as c:
                    owners = c.scalars(select(Job.lease_owner).where(Job.state.in_(jobs.ACTIVE)))
                    return any(f":{workers[0].pid}:" in (owner or "") for owner in owners)

            _wait_for(lambda: painted() >= JOBS // 10, 60, "the workers to get going")
            _kill_mid_job(workers[0], held_by_victim)
            watcher.dispose()

            _wait_for(lambda: replied() == JOBS, 120, f"all {JOBS} jobs to be replied")
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.terminate()
            errors = [worker.communicate(timeout=20)[1].decode() for worker in workers]

        for tweet in tweets:
            assert len([r for r in x.replies_to(tweet) if r.author_id == x.bot_user_id]) == 1, f"tweet {tweet}"
        with sessions() as s:
            taken_over = [
                job_id for job_id in s.scalars(select(Job.id))
                if any("lapsed" in e.reason for e in jobs.history(s, job_id))
            ]
        assert taken_over, "the killed worker's job was not taken over"
        assert all("Traceback" not in e for e in errors[1:]), errors
