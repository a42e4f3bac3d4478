"""The admin side of the web app, under ``/admin``: the queue, jobs, users, budget and logins.

``include`` adds it to the app that ``bot.web.create_app`` builds when given ``AdminSettings``.
Every route but the login form, the stylesheet and the icon needs a login (``auth``); every
request must name an allowed host, and a POST must be a small form. Pages are rendered on the
server; the queue page adds a few lines of script (with the response's CSP nonce) that refresh
its progress bars from ``/admin/api/queue``.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from bot.web.admin.settings import AdminSettings

__all__ = ["AdminSettings", "include"]

def include(app: FastAPI, settings: AdminSettings) -> None:
    """Add the admin side to ``app`` (whose ``state.context`` is the web app's ``WebContext``)."""
    from bot.web.admin import actions, images, login, pages
    from bot.web.admin.auth import Refusal, login_url

    app.state.admin = settings
    router = APIRouter(prefix="/admin")
    for part in (login.router, pages.router, actions.router, images.router):
        router.include_router(part)
    app.include_router(router, include_in_schema=False)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refusal)
        data = request.url.path.startswith("/admin/api/") or "/image/" in request.url.path
        if exc.login and request.method in ("GET", "HEAD") and not data:
            return RedirectResponse(login_url(request, expired=exc.expired), status_code=303)
        if data or request.method not in ("GET", "HEAD"):
            if not data and exc.status in (400, 413):  # a form refused: say so on a page
                return pages.error_page(request, exc)
            return JSONResponse({"error": exc.message}, exc.status, headers=exc.headers)
        return pages.error_page(request, exc)

    app.add_exception_handler(Refusal, refused)
