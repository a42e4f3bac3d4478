"""The admin side's route class: every route refuses a Host not allowed and a large POST first."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from bot.web.admin.auth import Refusal, settings

MAX_FORM_BYTES = 64 * 1024  # only small forms are ever posted here


class AdminRoute(APIRoute):
    """A route that first refuses a Host not allowed (DNS rebinding) and a POST body too large,
    before anything is read or parsed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            if not settings(request).allows_host(request.headers.get("host", "")):
                return Response("This host name is not one the admin pages answer to.\n", status_code=400,
                                media_type="text/plain")
            if request.method == "POST":
                length = request.headers.get("content-length", "")
                if not length.isdigit() or int(length) > MAX_FORM_BYTES:
                    raise Refusal(413, f"a form of at most {MAX_FORM_BYTES // 1024} KiB, with its length, is expected")
            return await handler(request)

        return checked


def admin_router() -> APIRouter:
    """A router whose routes are ``AdminRoute``s (each module of the admin side makes one)."""
    return APIRouter(route_class=AdminRoute)
