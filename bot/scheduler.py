"""APScheduler wiring: the poller and the worker as two interval jobs over the same Forger."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from bot.app import Forger
from bot.errors import XAuthError, XError, XRateLimited

log = logging.getLogger(__name__)

WORK_INTERVAL_S = 2.0  # how often an idle worker looks at the queue


def poll_job(forger: Forger) -> None:
    """The scheduled poll; X's transient errors are logged and the next poll tries again."""
    try:
        forger.poll()
    except XRateLimited as exc:
        log.warning("poll skipped: %s", exc)
    except XAuthError:
        raise  # a configuration error: let the scheduler log it loudly
    except XError as exc:
        log.warning("poll failed, will retry: %s", exc)


def work_job(forger: Forger) -> None:
    forger.work()


def build_scheduler(forger: Forger, *, poll: bool = True, work: bool = True) -> BackgroundScheduler:
    """A scheduler (not yet started) that polls and/or works; each job never overlaps itself."""
    scheduler = BackgroundScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=timezone.utc,
    )
    now = datetime.now(timezone.utc)
    if poll:
        scheduler.add_job(
            poll_job, "interval", args=[forger], id="poll",
            seconds=forger.config.bot.poll_interval_s, next_run_time=now,
        )
    if work:
        scheduler.add_job(work_job, "interval", args=[forger], id="work", seconds=WORK_INTERVAL_S, next_run_time=now)
    return scheduler
