"""The application object: the configured database, platform and renderer, wired once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot import platforms, poller, replies, retention, worker
from bot.config import Config
from bot.errors import ForgerError
from bot.gallery import Gallery
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
    # None in a process that only renders (``render_only``): it needs the database, nothing else.
    _platform: Platform | None
    renderer: Renderer
    lease: Lease
    progress: ProgressFn | None = field(default=None)
    # The paintings results are credited to: the bundled ones and ``gallery.extra_dirs``'.
    gallery: Gallery = field(default_factory=Gallery.load)
    # Set when the process is stopping: no new job is taken, and the render in hand is given up.
    stopping: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def create(
        cls, config: Config, env: Mapping[str, str], *, renderer: Renderer | None = None, upgrade: bool = False,
        platform: Platform | None = None, render_only: bool = False,
    ) -> Forger:
        """Wire a bot; the database must be at the current schema (``upgrade`` brings it there).

        The platform is the one ``bot.platform`` names (``bot.platforms``), its secrets read from
        ``env``; a ``platform`` given is used instead; ``render_only`` has none (a render worker:
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
        try:
            if not render_only:
                platform = platform or platforms.create(config, sessions, env)
        except Exception:
            engine.dispose()
            raise
        if renderer is None:
            renderer = NeuralRenderer(
                config.render.settings, config.render.weights_path, config.render.weights_sha256,
                compile_cache=config.paths.data_dir / "compiled",
            )
        lease = Lease(worker=worker_name(), lease_s=config.queue.lease_s, max_attempts=config.bot.max_attempts)
        return cls(config, engine, sessions, None if render_only else platform, renderer, lease, gallery=policy.gallery)

    @property
    def platform(self) -> Platform:
        """Where this bot reads and posts; a ForgerError in a process that only renders."""
        if self._platform is None:
            raise ForgerError("this process only renders: it has no platform to read or post")
        return self._platform

    @property
    def posts(self) -> bool:
        """Whether this process reads and posts (it does, unless it only renders)."""
        return self._platform is not None

    def poll(self) -> poller.PollReport:
        """Read new mentions and queue them, then send the replies owed (even if reading failed)."""
        try:
            return poller.poll(
                self.sessions, self.platform, page_size=self.config.bot.page_size, limits=self.limits,
                policy=poller.policy_for(self.config),
            )
        finally:  # replies owed go out even while reading mentions fails (a read cap, the platform down)
            self.deliver()

    def work(self) -> int:
        """Paint queued jobs until the queue is empty (or the process stops); returns how many were
        done. A process that posts delivers each result as it is painted."""
        done = 0
        while not self.stopping.is_set() and worker.work_once(
            self.sessions, self.renderer, self.lease, progress=self.progress, stop=self.stopping,
            gallery=self.gallery,
        ) is not None:
            done += 1
            if self.posts:
                self.deliver()
        return done

    @property
    def limits(self) -> Limits:
        return Limits(per_user_per_day=self.config.queue.per_user_per_day, queue_limit=self.config.queue.queue_limit)

    def deliver(self) -> replies.DeliveryReport:
        """Post every reply owed (results and texts) on this bot's platform."""
        return replies.deliver(
            self.sessions, self.platform, by=self.lease.worker, max_attempts=self.config.bot.max_attempts
        )

    def prune(self, *, now: datetime | None = None) -> retention.PruneReport:
        """Delete old photos and results, reference gallery copies, roll up old rows (``bot.retention``)."""
        keep = retention.Retention(self.config.retention.images_days, self.config.retention.rollup_days)
        return retention.prune(self.sessions, self.gallery, keep, now=now)

    def close(self) -> None:
        self.engine.dispose()

