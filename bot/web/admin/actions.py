"""What the admin pages' buttons do: retry, cancel, ban, unban, priority. Each is a POST form.

The login and the CSRF token are checked first. Users are acted on by id (any name works in a
URL that way). Each action runs in its own transaction, flashes what happened (or the
``AdminError``'s message) and redirects back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from bot import admin
from bot.admin import AdminError
from bot.web.admin import auth
from bot.web.admin.auth import Login, context, require_login
from bot.web.admin.routing import admin_router
from bot.web.admin.templating import flash, url

router = admin_router()
LoggedIn = Annotated[Login, Depends(require_login)]
Field = Annotated[str, Form()]

BY = "dashboard"


def _act(request: Request, login: Login, csrf: str, action: Callable[[Session], str], back: str, next: str) -> Response:
    auth.check_csrf(login, csrf)
    try:
        with context(request).sessions.begin() as s:
            done = action(s)
    except AdminError as exc:
        category, message = "error", str(exc)
    else:
        category, message = "ok", done
    response = RedirectResponse(auth.local(next, back), status_code=303)
    flash(request, response, category, message)
    return response


@router.post("/jobs/{job_id:int}/retry", name="admin.retry")
def retry(request: Request, job_id: int, login: LoggedIn, csrf: Field = "", next: Field = "") -> Response:
    def act(s: Session) -> str:
        admin.retry(s, job_id, by=BY)
        return f"Job {job_id} is queued again."
    return _act(request, login, csrf, act, url(request, "admin.job", job_id=job_id), next)


@router.post("/jobs/{job_id:int}/cancel", name="admin.cancel")
def cancel(request: Request, job_id: int, login: LoggedIn, csrf: Field = "", next: Field = "") -> Response:
    def act(s: Session) -> str:
        admin.cancel(s, job_id, by=BY)
        return f"Job {job_id} is cancelled."
    return _act(request, login, csrf, act, url(request, "admin.job", job_id=job_id), next)


@router.post("/users/{user_id:int}/ban", name="admin.ban")
def ban(request: Request, user_id: int, login: LoggedIn, csrf: Field = "", reason: Field = "",
        next: Field = "") -> Response:
    why = reason.strip()[:500] or "banned from the dashboard"

    def act(s: Session) -> str:
        admin.ban(s, user_id, reason=why)
        name = admin.user(s, user_id).username
        return f"@{name} is banned ({why}); their jobs not yet posted are cancelled."
    return _act(request, login, csrf, act, url(request, "admin.users"), next)


@router.post("/users/{user_id:int}/unban", name="admin.unban")
def unban(request: Request, user_id: int, login: LoggedIn, csrf: Field = "", next: Field = "") -> Response:
    def act(s: Session) -> str:
        admin.unban(s, user_id)
        return f"@{admin.user(s, user_id).username} is no longer banned."
    return _act(request, login, csrf, act, url(request, "admin.users"), next)


@router.post("/users/{user_id:int}/priority", name="admin.priority")
def priority(request: Request, user_id: int, login: LoggedIn, csrf: Field = "", priority: Field = "",
             next: Field = "") -> Response:
    raw = priority.strip()

    def act(s: Session) -> str:
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 3) or not 0 <= int(raw) <= 100:
            raise AdminError(f"Priority must be a whole number from 0 to 100, got: {raw[:20]!r}")
        admin.set_priority(s, user_id, int(raw))
        return f"@{admin.user(s, user_id).username} now has priority {int(raw)}."
    return _act(request, login, csrf, act, url(request, "admin.users"), next)
