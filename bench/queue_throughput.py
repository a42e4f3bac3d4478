"""Queue throughput: jobs per second claimed and completed by 1, 4 and 8 worker processes.

Each worker process loops: claim (timed), paint with the quick colour-transfer renderer on a
64 px picture, store the result, mark the job replied; X is left out, so the figures are the
queue's own. Runs on SQLite and, when FORGER_TEST_POSTGRES_URL is set, on PostgreSQL.

    FORGER_TEST_POSTGRES_URL=... .venv/bin/python bench/queue_throughput.py [--jobs 400] [--workers 1 4 8]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from PIL import Image
from sqlalchemy import create_engine, make_url, text

from bot.rendering import QuickRenderer
from storage import jobs, mentions, schema
from storage.db import open_engine, session_factory
from storage.models import JobState, Outcome


def _png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "PNG")
    return out.getvalue()


def _seed(url: str, count: int) -> None:
    engine = open_engine(url)
    schema.upgrade(engine)
    sessions = session_factory(engine)
    picture, painting = _png((200, 120, 40)), _png((20, 40, 160))
    with sessions.begin() as s:
        for n in range(count):
            tweet = str(10_000 + n)
            mentions.record(s, tweet_id=tweet, author_id=str(n % 50), author_username=f"u{n % 50}", text="", outcome=Outcome.QUEUED)
            s.flush()
            jobs.enqueue(s, tweet_id=tweet, author_id=str(n % 50), author_username=f"u{n % 50}",
                         content_image=picture, style_image=painting)
    engine.dispose()


def _work(url: str, name: str, latencies: list[float]) -> None:
    engine = open_engine(url)
    sessions = session_factory(engine)
    renderer = QuickRenderer(size=64, steps=1)
    while True:
        started = time.perf_counter()
        with sessions.begin() as s:
            job = jobs.claim_next(s, worker=name, lease_s=60, max_attempts=3)
        latencies.append(time.perf_counter() - started)
        if job is None:
            break
        result = renderer.render(job.content_image, job.style_image)
        with sessions.begin() as s:
            jobs.mark_uploading(s, job.id, worker=name, lease_s=60, result_image=result, render_s=0.0)
        with sessions.begin() as s:
            jobs.mark_replied(s, job.id, worker=name, reply_tweet_id=str(job.id))
    engine.dispose()


def _worker_process(url: str, name: str, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    latencies: list[float] = []
    _work(url, name, latencies)
    queue.put(latencies[:-1])  # the last claim found nothing: not a claim


def run(url: str, count: int, workers: int) -> tuple[float, float, float]:
    """(jobs per second, median claim ms, 95th percentile claim ms)."""
    _seed(url, count)
    results: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    processes = [mp.Process(target=_worker_process, args=(url, f"w{n}", results)) for n in range(workers)]
    started = time.perf_counter()
    for p in processes:
        p.start()
    latencies = [x for _ in processes for x in results.get()]
    for p in processes:
        p.join()
    elapsed = time.perf_counter() - started
    engine = open_engine(url)
    with session_factory(engine)() as s:
        replied = jobs.counts(s)[JobState.REPLIED]
    engine.dispose()
    assert replied == count, f"only {replied} of {count} jobs replied"
    assert len(latencies) == count, f"{len(latencies)} claims for {count} jobs: a job was claimed twice"
    cuts = statistics.quantiles(latencies, n=20)
    return count / elapsed, statistics.median(latencies) * 1000, cuts[18] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    postgres = os.environ.get("FORGER_TEST_POSTGRES_URL")
    print(f"{args.jobs} jobs, quick renderer at 64 px, no X; {os.cpu_count()} CPUs")
    print(f"{'backend':<11}{'workers':>8}{'jobs/s':>10}{'claim p50 ms':>14}{'claim p95 ms':>14}")
    for backend in ["sqlite", "postgresql"] if postgres else ["sqlite"]:
        for workers in args.workers:
            with tempfile.TemporaryDirectory() as folder:
                if backend == "sqlite":
                    url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
                    rate, p50, p95 = run(url, args.jobs, workers)
                else:
                    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")  # type: ignore[arg-type]
                    name = f"forger_bench_{uuid.uuid4().hex[:8]}"
                    with admin.connect() as c:
                        c.execute(text(f'CREATE DATABASE "{name}"'))
                    try:
                        url = make_url(postgres).set(database=name).render_as_string(hide_password=False)  # type: ignore[arg-type]
                        rate, p50, p95 = run(url, args.jobs, workers)
                    finally:
                        with admin.connect() as c:
                            c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                        admin.dispose()
            print(f"{backend:<11}{workers:>8}{rate:>10.1f}{p50:>14.2f}{p95:>14.2f}")


if __name__ == "__main__":
    main()
