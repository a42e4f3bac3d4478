"""Live progress for the event streams and status polls: one reader per web process for all.

However many pages and scripts follow their paintings, a ``Watcher`` reads the database once a
tick: the followed jobs in one query, the queue's order in another (when any is queued), the
median render time at most every few seconds. Each stream then hears of its own job, and a poll
of a job polled lately is answered from the last tick's reading, without a query of its own.
"""

from __future__ import annotations

import asyncio
import time
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
    were deleted), the queue's order, the median render time; ``started`` is when the read began
    (``time.monotonic``)."""

    asked: frozenset[str] = frozenset()
    jobs: dict[str, jobs.Glance] = field(default_factory=dict)
    positions: dict[int, int] = field(default_factory=dict)
    median_s: float | None = None
    started: float = -float("inf")


class Watcher:
    """The one reader of a web process. Its methods run on the event loop's thread only."""

    def __init__(
        self, reads: sessionmaker[Session], times: RenderTimes, *, interval_s: float = 1.0, poll_lease_s: float = 5.0
    ) -> None:
        self.reads, self.times, self.interval_s = reads, times, interval_s
        # A polled job is read at each tick until ``poll_lease_s`` after its last poll.
        self.poll_lease_s = poll_lease_s
        self._followed: Counter[str] = Counter()
        self._polled: dict[str, float] = {}  # token hash -> read until (monotonic)
        self._changed: dict[str, float] = {}  # token hash -> when this process changed the job
        self._reading = Reading()
        self._tick = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0  # how many reads so far (the tests count them)

    def latest(self, token_hash: str) -> Reading | None:
        """The last tick's reading if it holds this job and began at most one and a half ticks
        ago, else None (read the job yourself, then say ``polled``). A job this process changed
        since the reading began (``changed``) is not answered from it. A job answered from it is
        read for another ``poll_lease_s``.
        """
        now = time.monotonic()
        reading = self._reading
        if (
            token_hash not in reading.asked
            or now - reading.started > 1.5 * self.interval_s
            or self._changed.get(token_hash, -float("inf")) >= reading.started
        ):
            return None
        self.polled(token_hash)
        return reading

    def polled(self, token_hash: str) -> None:
        """The job (one that exists) was just polled: read it at each tick for the next
        ``poll_lease_s``, so that its next polls cost no query of their own."""
        self._polled[token_hash] = time.monotonic() + self.poll_lease_s
        self._start()

    def changed(self, token_hash: str) -> None:
        """This process has just changed the job (cancelled it): readings begun before are stale for it."""
        self._changed[token_hash] = time.monotonic()

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    def _wanted(self) -> list[str]:
        """The jobs to read at this tick: those followed, and those polled within their lease."""
        now = time.monotonic()
        self._polled = {token: until for token, until in self._polled.items() if until > now}
        self._changed = {token: at for token, at in self._changed.items() if now - at < 4 * self.interval_s}
        return list(self._followed.keys() | self._polled.keys())

    async def follow(self, token_hash: str, *, wait_s: float) -> AsyncIterator[Reading | None]:
        """Each tick's reading while the caller listens (it stops when it is done); None after
        ``wait_s`` without a tick (time for a keep-alive)."""
        self._followed[token_hash] += 1
        self._start()
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
        # No await between the check of what is wanted and the end of the task: a stream or
        # poll that starts meanwhile finds the task done and starts another.
        while wanted := self._wanted():
            self._reading = await run_in_threadpool(self._read, wanted)
            self.ticks += 1
            async with self._tick:
                self._tick.notify_all()
            # A tick every interval_s from the start of the last (so that a reading is at most
            # that old when the next is taken), however long the read took.
            await asyncio.sleep(max(0.0, self._reading.started + self.interval_s - time.monotonic()))

    def _read(self, token_hashes: list[str]) -> Reading:
        started = time.monotonic()
        with self.reads() as session:
            found = jobs.glances_by_token(session, token_hashes)
            busy = [g for g in found.values() if g.state in (JobState.QUEUED, JobState.RENDERING)]
            positions = jobs.positions(session) if any(g.state is JobState.QUEUED for g in busy) else {}
            median = self.times.median_s(session) if busy else None
        return Reading(frozenset(token_hashes), found, positions, median, started)
