"""The upload's size is refused from its Content-Length, before a byte of it is read or spooled."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from bot.web.public.errors import API, error_body

UPLOAD_PATH = f"{API}/paintings"
FORM_OVERHEAD = 64 * 1024  # the multipart framing and the small fields around two files


class UploadLimit:
    """Pure ASGI middleware: a POST of a painting larger than two uploads is answered 413 at once,
    one without a Content-Length 411 (uvicorn holds a body to its declared length)."""

    def __init__(self, app: ASGIApp, *, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body = 2 * max_upload_bytes + FORM_OVERHEAD
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].rstrip("/") == UPLOAD_PATH:
            declared = dict(scope["headers"]).get(b"content-length")
            if declared is None or not declared.isdigit():
                await _refuse(send, 411, "length_required", "Send the upload with a Content-Length.")
                return
            if int(declared) > self.max_body:
                await _refuse(send, 413, "too_large",
                              f"The upload is {int(declared):,} bytes; each image may have {self.max_upload_bytes:,}.")
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})
