"""The public side of the web app: the page (``pages``) and the API (``api``, ``/api/v1/…``).

``install`` adds them to the app ``bot.web.create_app`` builds; they need nothing of the admin side.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from bot.gallery import Gallery
from bot.web import WebContext
from bot.web.public import api, errors, pages
from bot.web.public.callers import KnownKeys, RateLimit
from bot.web.public.limits import UploadLimit
from bot.web.public.events import Watcher
from bot.web.public.status import QueuePlaces, RenderTimes

STATIC = Path(__file__).resolve().parent / "static"
# How often the one reader of the event streams and status polls looks at the database: a
# stream hears of a change within this, a poll answers with what was read at most 1.5 times it ago.
WATCH_TICK_S = 0.5


def install(app: FastAPI, context: WebContext) -> None:
    web = context.config.web
    times = RenderTimes()
    app.state.public = api.Public(gallery=Gallery.load(context.config.gallery.extra_dirs),
                                  rate=RateLimit(web.requests_per_minute), times=times, places=QueuePlaces(),
                                  keys=KnownKeys(), watcher=Watcher(context.reads, times, interval_s=WATCH_TICK_S))
    errors.install(app)
    app.add_middleware(UploadLimit, max_upload_bytes=web.max_upload_bytes)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
