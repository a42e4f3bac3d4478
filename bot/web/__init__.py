"""Forger's one web app: the public page and API, and the admin pages, on FastAPI.

``create_app`` builds it; ``forger web`` serves it with uvicorn (the Procfile's ``web``). The
public side (``bot.web.public``: the page, ``/api/v1/…``) and the admin side (``bot.web.admin``,
under ``/admin``) are routers over the same ``WebContext``; either can be left out, and the public
side works with the admin side off. ``bot.web.security`` sets the headers every response carries
(a CSP with a per-request nonce, ``request.state.csp_nonce``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Config
from bot.web.security import SecurityHeaders

if TYPE_CHECKING:
    from bot.web.admin import AdminSettings


@dataclass(frozen=True)
class WebContext:
    """What every route needs, built once by whoever builds the app (never read from globals)."""

    config: Config
    sessions: sessionmaker[Session]  # for what writes (a submitted job, an admin's action)
    reads: sessionmaker[Session]  # for what only reads (pages, status), so it holds no writer up on SQLite
    clock: Callable[[], float] = time.time


def context(request: Request) -> WebContext:
    """The ``WebContext`` of the app serving ``request``."""
    found: WebContext = request.app.state.context
    return found


def create_app(
    config: Config,
    sessions: sessionmaker[Session],
    *,
    reads: sessionmaker[Session] | None = None,
    public: bool = True,
    admin: AdminSettings | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The web app over ``sessions``: the public side if ``public``, the admin side under
    ``/admin`` if ``admin`` (its settings: ``bot.web.admin.AdminSettings``) is given."""
    if not public and admin is None:
        raise ValueError("the web app needs its public side, its admin side or both")
    context = WebContext(config=config, sessions=sessions, reads=reads or sessions, clock=clock)
    app = FastAPI(title="Forger", docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json" if public else None)
    app.state.context = context
    if public:
        from bot.web.public import install

        install(app, context)
    app.add_middleware(SecurityHeaders)
    if admin is not None:
        from bot.web.admin import include

        include(app, admin)
    return app
