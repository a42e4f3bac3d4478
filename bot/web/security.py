"""Headers on every response of the web app: a strict CSP with a per-request nonce, and no sniffing.

Everything the pages use comes from this server: no external fonts, scripts or CDNs. Inline
scripts run only with the response's nonce (``request.state.csp_nonce``, for templates).
"""

from __future__ import annotations

import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class SecurityHeaders:
    """Pure ASGI middleware (a ``BaseHTTPMiddleware`` would buffer the progress streams)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in security_headers(nonce, https=scope.get("scheme") == "https").items():
                    if name.encode().lower() not in present:
                        headers.append((name.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def security_headers(nonce: str, *, https: bool = False) -> dict[str, str]:
    """The headers a response gets unless it set its own. ``https``: the request came over HTTPS
    (which the app sees only behind a proxy it trusts), so browsers are told to keep to it (HSTS)."""
    hsts = {"Strict-Transport-Security": "max-age=31536000"} if https else {}
    return hsts | {
        "Content-Security-Policy": (
            "default-src 'none'; img-src 'self' blob: data:; style-src 'self'; connect-src 'self'; "
            f"script-src 'self' 'nonce-{nonce}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }
