"""The application object: the configured database, platform and renderer, wired once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot import platforms as registry
from bot import poller, replies, retention, worker
from bot.config import Config
from bot.errors import ForgerError
from bot.platform import Platform
from bot.rendering import NeuralRenderer, ProgressFn, Renderer
from bot.worker import Lease, worker_name
from storage import schema
from storage.admission import Limits
from storage.db import open_engine, session_factory

log = logging.getLogger(__name__)


@dataclass
class Forger:
    """One bot: what the poller, the worker, the CLI and the demo all act through."""

    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    # Where the bot answers, by name; none in a process that only renders (``render_only``): it
    # needs the database, nothing else.
    platforms: dict[str, Platform]
    renderer: Renderer
    lease: Lease
    # How mentions are read and answered, with the gallery: the bundled paintings and
    # ``gallery.extra_dirs``' (results are credited to them).
    policy: poller.PollPolicy
    progress: ProgressFn | None = field(default=None)
    # When each platform is polled next: sooner while mentions come in full pages.
    paces: dict[str, poller.Pace] = field(default_factory=dict)
    # Set when the process is stopping: no new job is taken, and the render in hand is given up.
    stopping: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def create(
        cls, config: Config, env: Mapping[str, str], *, renderer: Renderer | None = None, upgrade: bool = False,
        platforms: Mapping[str, Platform] | None = None, render_only: bool = False,
    ) -> Forger:
        """Wire a bot; the database must be at the current schema (``upgrade`` brings it there).

        The platforms are the ones ``bot.platforms`` names (``bot.platforms``' registry), their
        secrets read from ``env``; ``platforms`` given are used instead; ``render_only`` has none (a render worker:
        it needs no credentials, and its results are posted by the outbox elsewhere). Everything
        the settings name is checked here, at start: a bad gallery folder stops the bot with its
        name, not each poll later.
        """
        policy = poller.policy_for(config)
        engine = open_engine(config.database.url, create=upgrade)
        try:
            if upgrade:
                schema.upgrade(engine)
            schema.check(engine)
        except Exception:
            engine.dispose()
            raise
        sessions = session_factory(engine)
        answering: dict[str, Platform] = {}
        try:
            if not render_only:
                answering = dict(platforms) if platforms is not None else registry.create_all(config, sessions, env)
        except Exception:
            engine.dispose()
            raise
        if renderer is None:
            renderer = NeuralRenderer(
                config.render.settings, config.render.weights_path, config.render.weights_sha256,
                compile_cache=config.paths.data_dir / "compiled",
            )
        lease = Lease(worker=worker_name(), lease_s=config.queue.lease_s, max_attempts=config.bot.max_attempts)
        return cls(config, engine, sessions, answering, renderer, lease, policy)

    @property
    def platform(self) -> Platform:
        """The one platform this bot answers on; a ForgerError where there is none or several."""
        if len(self.platforms) != 1:
            raise ForgerError(
                "this process only renders: it has no platform to read or post" if not self.platforms
                else f"this bot answers on {', '.join(self.platforms)}: name one"
            )
        return next(iter(self.platforms.values()))

    @property
    def posts(self) -> bool:
        """Whether this process reads and posts (it does, unless it only renders)."""
        return bool(self.platforms)

    def poll(self) -> dict[str, poller.PollReport]:
        """On each platform, read new mentions and queue them, then send the replies owed (even if
        reading failed). One platform's failure does not keep the others from their poll: the
        first error is raised once all have had their turn."""
        reports, failure = {}, None
        for name, platform in self.platforms.items():
            pace = self.pace(name)
            try:
                reports[name] = poller.poll(
                    self.sessions, platform, page_size=self.config.bot.page_size, limits=self.limits,
                    policy=self.policy, busy=pace.busy(time.time()),
                )
                pace.after(reports[name], time.time())
            except Exception as exc:  # noqa: BLE001 - raised below, after the other platforms
                failure = failure or exc
            finally:  # replies owed go out even while reading mentions fails (a read cap, the platform down)
                try:
                    self.deliver_on(platform)
                except Exception as exc:  # noqa: BLE001 - raised below
                    failure = failure or exc
        if failure is not None:
            raise failure
        return reports

    def pace(self, name: str) -> poller.Pace:
        """Platform ``name``'s pace of polling."""
        if name not in self.paces:
            bot = self.config.bot
            self.paces[name] = poller.Pace(bot.poll_interval_s, bot.busy_poll_interval_s, settle_s=bot.poll_overlap_s)
        return self.paces[name]

    def next_poll_s(self) -> float:
        """Seconds until the next poll: the soonest any platform wants."""
        return min((self.pace(name).next_s for name in self.platforms), default=self.config.bot.poll_interval_s)

    def work(self) -> int:
        """Paint queued jobs until the queue is empty (or the process stops); returns how many were
        done. A process that posts delivers each result as it is painted."""
        done = 0
        while not self.stopping.is_set() and worker.work_once(
            self.sessions, self.renderer, self.lease, progress=self.progress, stop=self.stopping,
            gallery=self.policy.gallery,
        ) is not None:
            done += 1
            if self.posts:
                self.deliver()
        return done

    @property
    def limits(self) -> Limits:
        return Limits(per_user_per_day=self.config.queue.per_user_per_day, queue_limit=self.config.queue.queue_limit)

    def deliver(self) -> dict[str, replies.DeliveryReport]:
        """Post every reply owed (results and texts) on each of this bot's platforms; the first
        platform's error is raised once all have had their turn."""
        reports, failure = {}, None
        for name, platform in self.platforms.items():
            try:
                reports[name] = self.deliver_on(platform)
            except Exception as exc:  # noqa: BLE001 - raised below, after the other platforms
                failure = failure or exc
        if failure is not None:
            raise failure
        return reports

    def deliver_on(self, platform: Platform) -> replies.DeliveryReport:
        """Post every reply owed on ``platform``."""
        return replies.deliver(
            self.sessions, platform, by=self.lease.worker, max_attempts=self.config.bot.max_attempts,
            deliver_for_s=self.config.bot.deliver_for_s,
        )

    def prune(self, *, now: datetime | None = None) -> retention.PruneReport:
        """Delete old photos and results, reference gallery copies, roll up old rows (``bot.retention``)."""
        keep = retention.Retention(self.config.retention.images_days, self.config.retention.rollup_days)
        return retention.prune(self.sessions, self.policy.gallery, keep, now=now)

    def close(self) -> None:
        self.engine.dispose()

