"""Live progress for the event streams: one reader per web process for all of them.

However many pages and scripts follow their paintings, a ``Watcher`` reads the database once a
tick: the followed jobs in one query, the queue's order in another (when any is queued), the
median render time at most every few seconds. Each stream then hears of its own job.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from bot.web.public.status import RenderTimes
from storage import jobs
from storage.models import JobState


@dataclass(frozen=True)
class Reading:
    """What one tick read: the followed jobs (by token hash; those ``asked`` for that are missing
    were deleted), the queue's order, the median render time."""

    asked: frozenset[str] = frozenset()
    jobs: dict[str, jobs.Glance] = field(default_factory=dict)
    positions: dict[int, int] = field(default_factory=dict)
    median_s: float | None = None


class Watcher:
    def __init__(self, reads: sessionmaker[Session], times: RenderTimes, *, interval_s: float = 1.0) -> None:
        self.reads, self.times, self.interval_s = reads, times, interval_s
        self._followed: Counter[str] = Counter()
        self._reading = Reading()
        self._tick = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0  # how many reads so far (the tests count them)

    async def follow(self, token_hash: str, *, wait_s: float) -> AsyncIterator[Reading | None]:
        """Each tick's reading while the caller listens (it stops when it is done); None after
        ``wait_s`` without a tick (time for a keep-alive)."""
        self._followed[token_hash] += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        try:
            while True:
                async with self._tick:
                    try:
                        await asyncio.wait_for(self._tick.wait(), wait_s)
                    except TimeoutError:
                        yield None
                        continue
                yield self._reading
        finally:
            self._followed[token_hash] -= 1
            if self._followed[token_hash] <= 0:
                del self._followed[token_hash]

    async def _run(self) -> None:
        # No await between the check of ``_followed`` and the end of the task: a stream that
        # starts following meanwhile finds the task done and starts another.
        while self._followed:
            self._reading = await run_in_threadpool(self._read, list(self._followed))
            self.ticks += 1
            async with self._tick:
                self._tick.notify_all()
            await asyncio.sleep(self.interval_s)

    def _read(self, token_hashes: list[str]) -> Reading:
        with self.reads() as session:
            found = jobs.glances_by_token(session, token_hashes)
            busy = [g for g in found.values() if g.state in (JobState.QUEUED, JobState.RENDERING)]
            positions = jobs.positions(session) if any(g.state is JobState.QUEUED for g in busy) else {}
            median = self.times.median_s(session) if busy else None
        return Reading(frozenset(token_hashes), found, positions, median)
