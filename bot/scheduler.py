"""APScheduler wiring: the poller, the worker and the outbox as interval jobs over the same Forger."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from bot.app import Forger
from bot.errors import AuthError, PlatformError, RateLimited

log = logging.getLogger(__name__)

POLL_TICK_S = 1.0  # how often the poll job looks whether its time has come (``PollJob``)
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


class PollJob:
    """The scheduled poll; the platform's errors are logged and the next poll tries again.

    The scheduler calls it every ``POLL_TICK_S``; it polls when its time has come, which ``forger``
    sets after each poll: sooner while mentions come in full pages. (A read refused for a spent
    window is refused by the platform without a request until its reset, and the poll still sends
    the replies owed.) The job keeps its own time and never calls the scheduler: APScheduler's
    ``shutdown(wait=True)`` holds the job stores' lock while it waits for running jobs, so a job
    that asks the scheduler anything (``get_job``, ``modify_job``) as the process stops deadlocks.
    """

    def __init__(self, forger: Forger, clock: Callable[[], float] = time.monotonic) -> None:
        self.forger = forger
        self.clock = clock
        self.due = clock()

    def next_s(self) -> float:
        """Seconds until the next poll."""
        return max(0.0, self.due - self.clock())

    def __call__(self) -> None:
        if self.clock() < self.due:
            return
        try:
            self.forger.poll()
        except RateLimited as exc:
            log.warning("poll skipped: %s", exc)
        except AuthError:
            raise  # a configuration error: let the scheduler log it loudly
        except PlatformError as exc:
            log.warning("poll failed, will retry: %s", exc)
        finally:
            self.due = self.clock() + self.forger.next_poll_s()


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
        scheduler.add_job(PollJob(forger), "interval", id="poll", seconds=POLL_TICK_S, next_run_time=now)
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
