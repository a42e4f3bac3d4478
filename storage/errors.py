"""The root exception of ``storage`` and what can go wrong in it."""

from __future__ import annotations

from datetime import datetime


class StorageError(Exception):
    """Something went wrong persisting Forger's state."""


class IllegalTransition(StorageError):
    """A job was asked to move to a state it cannot reach from where it is."""

    def __init__(self, job_id: int, current: str, wanted: str) -> None:
        super().__init__(f"job {job_id} cannot go from {current} to {wanted}")
        self.job_id = job_id
        self.current = current
        self.wanted = wanted


class LeaseLost(StorageError):
    """A worker acted on a job it no longer holds: its lease lapsed, or an admin stepped in."""

    def __init__(self, job_id: int, worker: str, state: str) -> None:
        super().__init__(f"job {job_id} is no longer held by {worker} (it is {state})")
        self.job_id = job_id
        self.worker = worker
        self.state = state


class ImagesDeleted(StorageError):
    """A job's photos were deleted (``storage.retention``): it cannot be painted again."""

    def __init__(self, job_id: int, deleted_at: datetime) -> None:
        super().__init__(f"job {job_id}'s photos were deleted on {deleted_at:%Y-%m-%d} (retention): it cannot be retried")
        self.job_id = job_id
        self.deleted_at = deleted_at
