"""The root exception of ``storage`` and what can go wrong in it."""

from __future__ import annotations


class StorageError(Exception):
    """Something went wrong persisting Forger's state."""


class IllegalTransition(StorageError):
    """A job was asked to move to a state it cannot reach from where it is."""

    def __init__(self, job_id: int, current: str, wanted: str) -> None:
        super().__init__(f"job {job_id} cannot go from {current} to {wanted}")
        self.job_id = job_id
        self.current = current
        self.wanted = wanted
