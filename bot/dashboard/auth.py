"""Who may use the dashboard: one admin password, a login that expires, a CSRF token per session.

The password is kept only as an scrypt hash with a random salt, compared in constant time. The
login lives in Flask's signed session cookie (HttpOnly, SameSite=Lax) with the time it was made;
``gate`` runs before every request and turns away what is not logged in: pages redirect to the
login form, images, JSON and actions answer 401. Every POST must carry the session's CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from bot.dashboard.context import settings

blueprint = Blueprint("auth", __name__)

# Endpoints anyone may reach: the login form itself, its stylesheet and the tab's icon.
PUBLIC = frozenset({"auth.login", "static", "pages.favicon"})
# Endpoints that answer data, not pages: refused with 401 rather than sent to the login form.
DATA = frozenset({"images.image", "pages.api_queue"})


class PasswordHash:
    """The admin password as scrypt(password, random salt); the password itself is not kept."""

    # scrypt's interactive-login cost (RFC 7914): about 50 ms and 16 MiB per try.
    _N, _R, _P = 2**14, 8, 1

    def __init__(self, password: str) -> None:
        if not password:
            raise ValueError("the admin password must not be empty")
        self._salt = os.urandom(16)
        self._digest = self._hash(password)

    def _hash(self, candidate: str) -> bytes:
        return hashlib.scrypt(candidate.encode(), salt=self._salt, n=self._N, r=self._R, p=self._P, dklen=32)

    def matches(self, candidate: str) -> bool:
        return hmac.compare_digest(self._hash(candidate), self._digest)

    def __repr__(self) -> str:
        return "PasswordHash(scrypt)"


def csrf_token() -> str:
    """The session's CSRF token, made on first use (the login form needs one before any login)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    token: str = session["csrf"]
    return token


def logged_in() -> bool:
    """Is there a login in this session that has not expired? (An expired one is cleared.)"""
    since = session.get("login_at")
    if not isinstance(since, (int, float)):
        return False
    if settings().clock() - since >= settings().session_lifetime_s:
        session.clear()
        flash("Your session expired: log in again.", "error")
        return False
    return True


def gate() -> ResponseReturnValue | None:
    """Before every request: refuse what is not logged in, and any POST without the CSRF token."""
    if request.endpoint not in PUBLIC and not logged_in():
        if request.method not in ("GET", "HEAD") or request.endpoint in DATA:
            abort(401, "log in first")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if request.method == "POST":
        expected = session.get("csrf")
        given = request.form.get("csrf", "")
        if not isinstance(expected, str) or not hmac.compare_digest(given.encode(), expected.encode()):
            abort(400, "missing or wrong CSRF token: reload the page and try again")
    return None


def local(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site, else ``default`` (no redirects to other sites)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The password form; a right password starts a fresh session with a fresh CSRF token."""
    target = local(request.values.get("next"), url_for("pages.queue"))
    if request.method == "GET":
        if logged_in():
            return redirect(target)
        return render_template("login.html", next=target)
    if not settings().password.matches(request.form.get("password", "")):
        flash("Wrong password.", "error")
        return render_template("login.html", next=target), 401
    session.clear()
    session.permanent = True  # the cookie itself expires with the login, not with the browser
    session["login_at"] = settings().clock()
    session["csrf"] = secrets.token_urlsafe(32)
    return redirect(target)


@blueprint.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    session.clear()
    flash("Logged out.", "ok")
    return redirect(url_for("auth.login"))
