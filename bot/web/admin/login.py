"""The login form, logging in (throttled: ``auth.attempt``) and logging out."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from bot.web.admin import auth
from bot.web.admin.auth import Login, require_login
from bot.web.admin.routing import admin_router
from bot.web.admin.templating import render, url

router = admin_router()


def _form(request: Request, target: str, status: int = 200, messages: list[tuple[str, str]] | None = None,
          headers: dict[str, str] | None = None) -> Response:
    token, new = auth.login_token(request)
    response = render(request, "login.html", status, messages=messages, headers=headers, next=target,
                      login_csrf=token, here="login")
    if new:
        auth.set_login_cookie(request, response, token)
    return response


@router.api_route("/login", methods=["GET", "HEAD"], name="admin.login")
def login_form(request: Request) -> Response:
    """The password form (HEAD: only its headers; nothing is checked)."""
    target = auth.local(request.query_params.get("next"), url(request, "admin.queue"))
    if auth.current(request) is not None:
        return RedirectResponse(target, status_code=303)
    messages = []
    if request.query_params.get("expired") == "1":
        messages.append(("error", "Your session expired: log in again."))
    if request.query_params.get("out") == "1":
        messages.append(("ok", "Logged out."))
    return _form(request, target, messages=messages)


@router.post("/login", name="admin.login_post")
def login(request: Request, password: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "") -> Response:
    """A right password starts a fresh server-side session; a wrong one is counted and slows the next."""
    auth.check_login_csrf(request, csrf)
    target = auth.local(next, url(request, "admin.queue"))
    tried = auth.attempt(request, password)
    if tried.wait_s > 0:
        minutes = f"{tried.wait_s / 60:.0f} minutes" if tried.wait_s >= 90 else f"{tried.wait_s:.0f} seconds"
        return _form(request, target, 429, messages=[("error", f"Too many failed logins: try again in {minutes}.")],
                     headers=auth.retry_after(tried.wait_s))
    if tried.token is None:
        return _form(request, target, 401, messages=[("error", "Wrong password.")])
    response = RedirectResponse(target, status_code=303)
    auth.set_session_cookie(request, response, tried.token)
    return response


@router.post("/logout", name="admin.logout")
def logout(request: Request, login: Annotated[Login, Depends(require_login)],
           csrf: Annotated[str, Form()] = "") -> Response:
    auth.check_csrf(login, csrf)
    auth.logout(request, login)
    response = RedirectResponse(url(request, "admin.login", {"out": "1"}), status_code=303)
    response.delete_cookie(auth.COOKIE, path=auth.PATH)
    return response
