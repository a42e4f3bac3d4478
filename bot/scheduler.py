"""APScheduler wiring: the poller, the worker and the outbox as interval jobs over the same Forger."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

from bot.app import Forger
from bot.errors import AuthError, PlatformError, RateLimited

log = logging.getLogger(__name__)

WORK_INTERVAL_S = 2.0  # how often an idle worker looks at the queue
DELIVER_INTERVAL_S = 5.0  # how often the outbox looks for posts owed (results painted elsewhere)
PRUNE_INTERVAL_S = 86_400.0  # how often the poller's process applies the retention (``bot.retention``)


class _SkipBusyWorker(logging.Filter):
    """Drop APScheduler's warning that a run was skipped because the last one is still going.

    The work job drains the queue, so while it paints every tick finds it busy: that skip is the
    design (one render at a time per process), not a problem worth a warning every 2 s.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


_SKIP_BUSY_WORKER = _SkipBusyWorker()


def poll_job(forger: Forger, scheduler: BaseScheduler | None = None) -> None:
    """The scheduled poll; the platform's errors are logged and the next poll tries again.

    The next poll comes when ``forger`` says: sooner while mentions come in full pages. (A read
    refused for a spent window is refused by the platform without a request until its reset,
    and the poll still sends the replies owed.)
    """
    try:
        forger.poll()
    except RateLimited as exc:
        log.warning("poll skipped: %s", exc)
    except AuthError:
        raise  # a configuration error: let the scheduler log it loudly
    except PlatformError as exc:
        log.warning("poll failed, will retry: %s", exc)
    finally:
        if scheduler is not None and scheduler.get_job("poll") is not None:
            next_run = datetime.now(timezone.utc) + timedelta(seconds=forger.next_poll_s())
            scheduler.modify_job("poll", next_run_time=next_run)


def work_job(forger: Forger) -> None:
    forger.work()


def deliver_job(forger: Forger) -> None:
    """The scheduled delivery; the platform's errors are logged and the next round tries again."""
    try:
        forger.deliver()
    except AuthError:
        raise
    except PlatformError as exc:
        log.warning("delivery failed, will retry: %s", exc)


def prune_job(forger: Forger) -> None:
    """The daily prune; a failure is logged, and tomorrow's tries again."""
    try:
        forger.prune()
    except Exception:
        log.exception("prune failed; the next one tries again")


def build_scheduler(
    forger: Forger, *, poll: bool = True, work: bool = True, deliver: bool = False
) -> BackgroundScheduler:
    """A scheduler (not yet started) that polls, works and/or delivers; each job never overlaps itself.
    The process that polls also prunes, once a day (the first a minute after the start)."""
    logging.getLogger("apscheduler.scheduler").addFilter(_SKIP_BUSY_WORKER)  # added once
    scheduler = BackgroundScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=timezone.utc,
    )
    now = datetime.now(timezone.utc)
    if poll:
        scheduler.add_job(
            poll_job, "interval", args=[forger, scheduler], id="poll",
            seconds=forger.config.bot.poll_interval_s, next_run_time=now,
        )
        scheduler.add_job(
            prune_job, "interval", args=[forger], id="prune", seconds=PRUNE_INTERVAL_S,
            next_run_time=now + timedelta(seconds=60),
        )
    if work:
        scheduler.add_job(work_job, "interval", args=[forger], id="work", seconds=WORK_INTERVAL_S, next_run_time=now)
    if deliver:
        scheduler.add_job(
            deliver_job, "interval", args=[forger], id="deliver", seconds=DELIVER_INTERVAL_S, next_run_time=now,
        )
    return scheduler
