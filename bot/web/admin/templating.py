"""Rendering the admin pages: Jinja templates (autoescaped), their filters, and flash messages.

A flash message (what an action did) rides in a short-lived cookie to the page it redirects to,
signed with the session's CSRF secret, so that no one else can put words on an admin's page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from bot.web.admin.auth import PATH, Login, current

FLASH_COOKIE = "forger_admin_flash"
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))


def url(request: Request, name: str, query: dict[str, Any] | None = None, **params: Any) -> str:
    """The path of route ``name`` (with ``query``, its empty values left out)."""
    path = str(request.app.url_path_for(name, **{k: str(v) for k, v in params.items()}))
    pairs = [(k, v) for k, v in (query or {}).items() if v not in (None, "", ())]
    flat = [(k, x) for k, v in pairs for x in (v if isinstance(v, (list, tuple)) else [v])]
    return path + (f"?{urlencode(flat)}" if flat else "")


def duration(seconds: float | None) -> str:
    """``95`` -> ``1m 35s``: short enough for a table cell."""
    if seconds is None:
        return "–"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600}h"


def when(at: datetime | None) -> str:
    return "–" if at is None else f"{at:%Y-%m-%d %H:%M:%S} UTC"


templates.env.filters.update(duration=duration, when=when)


def _sign(login: Login, data: bytes) -> str:
    return hmac.new(login.csrf.encode(), data, hashlib.sha256).hexdigest()


def flash(request: Request, response: Response, category: str, message: str) -> None:
    """Show ``message`` on the next page this admin sees."""
    login = current(request)
    if login is None:
        return
    data = json.dumps([category, message[:600]]).encode()
    value = base64.urlsafe_b64encode(data).decode() + "." + _sign(login, data)
    response.set_cookie(FLASH_COOKIE, value, max_age=60, path=PATH, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")


def _flashes(request: Request, login: Login | None) -> list[tuple[str, str]]:
    raw = request.cookies.get(FLASH_COOKIE, "")
    if not raw or login is None or "." not in raw:
        return []
    encoded, signature = raw.rsplit(".", 1)
    try:
        data = base64.urlsafe_b64decode(encoded.encode())
        if not hmac.compare_digest(signature, _sign(login, data)):
            return []
        category, message = json.loads(data)
    except ValueError:
        return []
    return [(str(category), str(message))]


def render(request: Request, template: str, status: int = 200, *, messages: list[tuple[str, str]] | None = None,
           headers: dict[str, str] | None = None, **values: Any) -> HTMLResponse:
    """``template`` with ``values``, this admin's flash messages, and what every page needs."""
    login = current(request)
    shown = (messages or []) + _flashes(request, login)
    response = templates.TemplateResponse(request, template, {
        "login": login, "messages": shown, "nonce": request.state.csp_nonce,
        "url": lambda name, query=None, **params: url(request, name, query, **params),
        **values,
    }, status_code=status, headers=headers)
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path=PATH)
    return response
