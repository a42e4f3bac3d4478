"""Concurrent claims on a real PostgreSQL: SKIP LOCKED lets workers pass each other's claims.

How this test was checked to fail: with ``.with_for_update(skip_locked=True)`` removed from the
claim in ``storage/jobs.py``, session B picks the same row as A and blocks on A's row lock, so it
has not returned when ``b.join`` times out and the test fails ("B waited on A's claim").
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.orm import Session

from storage import jobs, posts
from storage.db import open_engine, session_factory
from storage.models import Outcome

pytestmark = pytest.mark.postgres


def test_a_second_worker_skips_a_held_claim_and_a_third_finds_none(postgres_url: str) -> None:
    engine = open_engine(postgres_url)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        for post_ref in ("100", "101"):
            posts.record(s, platform="memory", post_ref=post_ref, author_ref="1", author_username="a", text="",
                         outcome=Outcome.QUEUED)
            s.flush()
            jobs.enqueue(s, platform="memory", post_ref=post_ref, author_username="a", content_image=b"",
                         style_image=b"")

    def claim(session: Session, worker: str) -> int | None:
        job = jobs.claim_next(session, worker=worker, lease_s=60, max_attempts=3)
        return job.id if job else None

    a = sessions()
    a.begin()
    got: dict[str, int | None] = {}
    try:
        got["a"] = claim(a, "A")  # A's transaction stays open: its row stays locked

        def other(worker: str) -> None:
            with sessions.begin() as s:
                got[worker] = claim(s, worker)

        b = threading.Thread(target=other, args=("B",))
        b.start()
        b.join(timeout=10)
        assert not b.is_alive(), "B waited on A's claim instead of skipping it"
        c = threading.Thread(target=other, args=("C",))
        c.start()
        c.join(timeout=10)
        assert not c.is_alive(), "C waited on a held claim"
    finally:
        a.commit()
        a.close()
    assert got == {"a": 1, "B": 2, "C": None}
    with sessions() as s:
        assert [jobs.get(s, i).lease_owner for i in (1, 2)] == ["A", "B"]
    engine.dispose()
