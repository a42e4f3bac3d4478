"""What a web caller sees of a job: its state in plain words, place in the queue, ETA and progress.

One function serves the status request, the event stream and the page, so all three agree.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from sqlalchemy.orm import Session

from storage import jobs
from storage.models import Job, JobState

State = Literal["queued", "painting", "done", "failed", "cancelled"]
FINISHED = ("done", "failed", "cancelled")

_STATES: dict[JobState, State] = {
    JobState.QUEUED: "queued",
    JobState.RENDERING: "painting",
    JobState.UPLOADING: "painting",  # painted, being put away: a moment (a web job is never posted)
    JobState.REPLIED: "done",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "cancelled",
}
_MESSAGES: dict[State, str] = {
    "queued": "Waiting for an easel.",
    "painting": "Painting.",
    "done": "Painted.",
    "failed": "Sorry, this picture could not be painted. Please try other photos.",
    "cancelled": "Cancelled.",
}


class Links(BaseModel):
    status: str
    events: str
    result: str
    photo: str
    page: str


class PaintingStatus(BaseModel):
    """A painting asked for on the web, as its caller sees it."""

    token: str
    state: State
    message: str
    position: int | None  # 1: the next to be painted; None unless queued
    eta_s: float | None  # seconds until it is likely done, from measured renders; None if unknown
    progress: float  # 0 to 1
    created_at: datetime
    finished_at: datetime | None
    links: Links


def links(base: str, token: str) -> Links:
    """The painting's URLs under ``base`` (the server's root, ending in /)."""
    api = f"{base}api/v1/paintings/{token}"
    return Links(status=api, events=f"{api}/events", result=f"{api}/result", photo=f"{api}/photo",
                 page=f"{base}p/{token}")


class RenderTimes:
    """The median render time (``storage.jobs.median_render_s``), read at most every ``ttl_s``:
    the same for every caller, so a hundred status polls a second need not each ask."""

    def __init__(self, ttl_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.clock = ttl_s, clock
        self._value: float | None = None
        self._read_at = -math.inf
        self._lock = threading.Lock()

    def median_s(self, session: Session) -> float | None:
        with self._lock:
            if self.clock() - self._read_at < self.ttl_s:
                return self._value
        value = jobs.median_render_s(session)
        with self._lock:
            self._value, self._read_at = value, self.clock()
        return value


class QueuePlaces:
    """Every due job's place in the queue (``storage.jobs.positions``), read at most every
    ``ttl_s``: one query a second answers every status poll, where each poll counting the jobs
    ahead of its own was most of its cost. A job queued since the last read, or held back, is
    counted on its own (``storage.jobs.glance_position``). A place is at most ``ttl_s`` old."""

    def __init__(self, ttl_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.clock = ttl_s, clock
        self._places: dict[int, int] = {}
        self._read_at = -math.inf
        self._lock = threading.Lock()

    def place(self, session: Session, job: jobs.Glance) -> int | None:
        """``job``'s place (1: the next to be painted); None unless it is queued and due."""
        if job.state is not JobState.QUEUED:
            return None
        with self._lock:
            fresh = self.clock() - self._read_at < self.ttl_s
        if not fresh:
            places = jobs.positions(session)
            with self._lock:
                self._places, self._read_at = places, self.clock()
        found = self._places.get(job.id)
        return found if found is not None else jobs.glance_position(session, job)


def state_of(job: Job | jobs.Glance) -> State:
    return _STATES[job.state]


def describe(session: Session, job: jobs.Glance, token: str, base: str, times: RenderTimes, places: QueuePlaces
             ) -> PaintingStatus:
    position = median = None
    if state_of(job) in ("queued", "painting"):
        position = places.place(session, job)
        median = times.median_s(session)
    return status_of(job, token, base, position=position, median_s=median)


def status_of(job: jobs.Glance, token: str, base: str, *, position: int | None, median_s: float | None
              ) -> PaintingStatus:
    """The status of a glanced job whose ``position`` (None unless queued) and the median render
    time are known."""
    state = state_of(job)
    eta = jobs.estimate_s(median_s, job, position) if state in ("queued", "painting") else None
    if state == "done":
        progress = 1.0
    elif state == "painting" and job.progress_total:
        progress = min(1.0, job.progress_iteration / job.progress_total)
    else:
        progress = 0.0
    return PaintingStatus(
        token=token, state=state, message=_MESSAGES[state], position=position if state == "queued" else None,
        eta_s=round(eta, 1) if eta is not None else None, progress=round(progress, 3),
        created_at=job.created_at, finished_at=job.finished_at, links=links(base, token),
    )
