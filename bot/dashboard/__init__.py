"""The admin dashboard: server-rendered pages over ``bot.admin``, behind one admin password.

``create_app`` builds the Flask app; ``forger admin`` serves it with waitress. Every request opens
its own transaction (``with sessions.begin() as s``) and calls the same ``bot.admin`` functions as
the CLI, so the dashboard holds no SQL of its own. Pages work without JavaScript; the queue page
adds a few lines of inline script that refresh its progress bars from ``/api/queue``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import timedelta

from flask import Flask, g
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from bot.dashboard import actions, auth, images, pages
from bot.dashboard.context import EXTENSION, Settings

__all__ = ["EXTENSION", "Settings", "create_app"]


def create_app(
    sessions: sessionmaker[Session],
    *,
    password: str,
    secret_key: bytes,
    budget_usd: float,
    session_lifetime_s: int = 8 * 3600,
    quota_per_day: int | None = None,
    clock: Callable[[], float] = time.time,
    reads: sessionmaker[Session] | None = None,
) -> Flask:
    """The dashboard app over ``sessions``.

    ``password`` is hashed at once (scrypt, random salt) and only the hash is kept. ``secret_key``
    signs the session cookie: a random one logs everyone out when the process restarts. A login
    lasts ``session_lifetime_s`` from the moment it was made, however active the admin is.
    ``quota_per_day`` (config ``queue.per_user_per_day``) is shown beside each user's renders;
    ``clock`` gives epoch seconds (tests pass their own to expire a session without waiting).
    ``reads`` (``session_factory(read_only=True)``) serve the pages, so that drawing one holds no
    worker up on SQLite; ``sessions`` by default.
    """
    if session_lifetime_s < 0:
        raise ValueError(f"session_lifetime_s must be zero or more, got: {session_lifetime_s}")
    if len(secret_key) < 16:
        raise ValueError("secret_key must be at least 16 bytes")
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_NAME="forger_admin",
        SESSION_COOKIE_HTTPONLY=True,
        # Lax: the cookie rides along on top-level GET navigations from elsewhere (a link to a
        # job page works), never on a cross-site POST; the CSRF token covers older browsers.
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=session_lifetime_s),
        # Only small forms are ever posted here.
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.extensions[EXTENSION] = Settings(
        sessions=sessions, reads=reads or sessions, password=auth.PasswordHash(password), budget_usd=budget_usd,
        session_lifetime_s=session_lifetime_s, quota_per_day=quota_per_day, clock=clock,
    )
    for blueprint in (auth.blueprint, pages.blueprint, actions.blueprint, images.blueprint):
        app.register_blueprint(blueprint)
    app.before_request(auth.gate)
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, pages.http_error)
    app.jinja_env.globals.update(csp_nonce=csp_nonce, csrf_token=auth.csrf_token)
    return app


def csp_nonce() -> str:
    """This response's nonce for its inline script (the CSP allows no other inline script)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    nonce: str = g.csp_nonce
    return nonce


def _security_headers(response: Response) -> ResponseReturnValue:
    # Everything the pages use comes from this server; nothing may frame them.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self'; style-src 'self'; connect-src 'self'; "
        f"script-src 'nonce-{csp_nonce()}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response
