"""Bytes per job in the database, before and after the retention (#21): SQLite, sample photos.

Fills three SQLite databases with the same jobs (half a lone photo painted after a gallery
painting, half two photos; each with its result, its history and a few API calls), finished
``--age`` days ago:

- before: as Forger stored them until the retention, a lone photo's job with its own copy of
  the gallery painting, everything kept for ever;
- referenced: the painting named instead of copied (what a job holds in its first week);
- pruned: after ``forger db prune`` (``retention.images_days``: 7), its photos and result gone.

Each database is vacuumed before it is measured (a file's free pages are reused, not returned).

    .venv/bin/python bench/retention.py [--jobs 200] [--age 10]

(Not bench/storage.py: run as a script, that name would shadow the storage package for every
script in bench/.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.gallery import Gallery  # noqa: E402
from bot.rendering import QuickRenderer  # noqa: E402
from bot.retention import Retention, prune, vacuum  # noqa: E402
from storage import jobs, ledger, retention, schema  # noqa: E402
from storage.db import database_size, open_engine, session_factory  # noqa: E402
from storage.models import JobEvent, JobState, utcnow  # noqa: E402

SAMPLES = ROOT / "bot" / "samples"


def fill(sessions: sessionmaker[Session], count: int, *, age_days: float, referenced: bool) -> None:
    """``count`` finished jobs, as a bot stores them (``referenced``: gallery paintings named)."""
    gallery = Gallery.load()
    photos = [(SAMPLES / f"{name}.jpg").read_bytes() for name in ("coffee", "chelsea")]
    renderer = QuickRenderer(size=512)
    painted: dict[tuple[int, bytes], bytes] = {}  # a result is as big whichever job it is: painted once
    finished = utcnow() - timedelta(days=age_days)
    with sessions.begin() as session:
        for n in range(count):
            photo = photos[n % 2]
            if n % 2 == 0:  # a lone photo: a gallery painting
                painting = gallery.pick(str(n))
                style, key = (None, painting.key) if referenced else (painting.image(), None)
                style_image = painting.image()
            else:  # two photos: the second is the painting
                style, key = photos[1 - n % 2], None
                style_image = style
            job = jobs.enqueue(session, content_image=photo, style_image=style, style_painting=key,
                               platform=None, post_ref=None, author_username=f"user{n}")
            if (n % 2, style_image) not in painted:
                painted[n % 2, style_image] = renderer.render(photo, style_image)
            job.result_image = painted[n % 2, style_image]
            job.state, job.finished_at, job.render_s = JobState.REPLIED, finished, 30.0
            for to_state in (JobState.RENDERING, JobState.UPLOADING, JobState.REPLIED):
                session.add(JobEvent(job_id=job.id, from_state=None, to_state=to_state, reason="bench", at=finished))
            for call in range(3):  # a mention read, a reply, an upload
                ledger.record_call(session, "x", f"endpoint {call}", status=200, cost_usd=0.005, now=finished)


def measure(folder: Path, count: int, age_days: float, *, referenced: bool, pruned: bool) -> tuple[float, float]:
    """(bytes per job in the file, bytes of images per job) of one database so filled."""
    engine = open_engine(f"sqlite:///{folder / f'{referenced}-{pruned}.sqlite3'}")
    try:
        schema.upgrade(engine)
        sessions = session_factory(engine)
        fill(sessions, count, age_days=age_days, referenced=referenced)
        if pruned:
            prune(sessions, Gallery.load(), Retention(images_days=7, rollup_days=90))
        vacuum(engine)
        with sessions() as session:
            images = retention.image_bytes(session)
        return database_size(engine) / count, images / count
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--age", type=float, default=10.0, help="days since the jobs finished")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = [
            ("before (copies, kept for ever)", measure(Path(folder), args.jobs, args.age, referenced=False, pruned=False)),
            ("paintings referenced (first week)", measure(Path(folder), args.jobs, args.age, referenced=True, pruned=False)),
            (f"pruned after 7 days ({args.age:g} days old)", measure(Path(folder), args.jobs, args.age, referenced=True,
                                                                    pruned=True)),
        ]
    print(f"{args.jobs} jobs, SQLite, vacuumed")
    print(f"{'':38} {'bytes/job':>11} {'images/job':>11}")
    for name, (per_job, images) in rows:
        print(f"{name:38} {per_job:>11,.0f} {images:>11,.0f}")
    before = rows[0][1][0]
    print(f"per 100k jobs: {before * 1e5 / 1e9:.1f} GB before, {rows[1][1][0] * 1e5 / 1e9:.1f} GB referenced, "
          f"{rows[2][1][0] * 1e5 / 1e9:.2f} GB pruned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
