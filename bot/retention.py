"""Pruning: delete people's photos and results after ``retention.images_days``, turn stored copies
of gallery paintings into references, and roll the ledger's and the job history's old rows up
into daily sums after ``retention.rollup_days``.

``forger db prune`` runs it; so does the poller's scheduler, once a day. Each step is its own
transaction, so a prune stopped halfway has done its first steps and the next one does the rest.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from bot.gallery import Gallery
from storage import jobs, ledger, retention
from storage.models import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retention:
    """How long things are kept: ``retention.images_days`` and ``retention.rollup_days``."""

    images_days: float = 7.0
    rollup_days: float = 90.0


@dataclass(frozen=True)
class PruneReport:
    images_deleted: int = 0  # jobs whose photos and result were deleted
    paintings_referenced: int = 0  # jobs whose copy of a gallery painting became a reference
    calls_rolled_up: int = 0  # ledger rows summed into days
    events_rolled_up: int = 0  # job events summed into days


def prune(
    sessions: sessionmaker[Session], gallery: Gallery, keep: Retention, *, now: datetime | None = None,
) -> PruneReport:
    """Apply ``keep`` to the database as of ``now``; what was done."""
    now = now or utcnow()
    referenced = refer_gallery_copies(sessions, gallery)
    with sessions.begin() as session:
        deleted = retention.delete_images(session, finished_before=now - timedelta(days=keep.images_days), now=now)
    rollup_before = now - timedelta(days=keep.rollup_days)
    with sessions.begin() as session:
        calls = ledger.roll_up(session, before=rollup_before)
    with sessions.begin() as session:
        events = jobs.roll_up_events(session, before=rollup_before)
    report = PruneReport(deleted, referenced, calls, events)
    log.info("prune: images of %d jobs deleted, %d gallery copies referenced, %d ledger rows and %d job events "
             "rolled up into days", *(report.images_deleted, report.paintings_referenced, report.calls_rolled_up,
                                      report.events_rolled_up))
    return report


def refer_gallery_copies(sessions: sessionmaker[Session], gallery: Gallery) -> int:
    """Jobs storing a copy of a gallery painting name it instead (jobs queued before paintings
    were referenced, migration 0006); how many. Only style images of a painting's exact length
    are read."""
    by_digest = {hashlib.sha256(p.image()).hexdigest(): p for p in gallery.paintings}
    sizes = {len(p.image()) for p in gallery.paintings}
    referred, after = 0, 0
    while True:
        with sessions.begin() as session:
            found = retention.gallery_copies(session, sizes, after=after)
            for job_id, data in found:
                painting = by_digest.get(hashlib.sha256(data).hexdigest())
                if painting is not None:
                    retention.refer(session, job_id, painting.key)
                    referred += 1
        if not found:
            return referred
        after = found[-1][0]


def vacuum(engine: Engine) -> None:
    """Give the space freed back to the file system (SQLite's VACUUM; PostgreSQL's VACUUM reuses it)."""
    if engine.dialect.name == "sqlite":  # outside any transaction: on the driver's connection
        with engine.connect() as connection:
            driver = connection.connection.driver_connection
            driver.execute("VACUUM")  # type: ignore[union-attr]
            driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]  # the copy it wrote
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM"))
