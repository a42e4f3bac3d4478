"""Refusals of the web API: a status, a stable code and a plain message, as one JSON shape.

Every refusal reads ``{"error": {"code": "...", "message": "..."}}``; the codes are part of the
API (clients branch on them), the messages are for people. Over quota or rate is 429 with
``Retry-After``, as is a full queue (503).
"""

from __future__ import annotations

import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

API = "/api/v1"

# code: (status, what it means) — the table the OpenAPI document and the README point to.
CODES: dict[str, tuple[int, str]] = {
    "invalid_request": (422, "a field is missing or not of the expected kind"),
    "method_not_allowed": (405, "the path does not take that method"),
    "unsupported_type": (415, "an upload is not a JPEG, PNG, WebP or GIF image (judged by its bytes)"),
    "too_large": (413, "an upload, or the whole request, has more bytes than the operator allows"),
    "length_required": (411, "an upload without a Content-Length"),
    "too_many_pixels": (413, "an image's header claims more pixels than allowed (a decompression bomb)"),
    "too_small": (422, "an image's short side is below the minimum"),
    "damaged_image": (422, "an image that cannot be decoded"),
    "painting_missing": (422, "neither a painting file nor a gallery painting's name"),
    "painting_ambiguous": (422, "both a painting file and a gallery painting's name"),
    "unknown_painting": (422, "no gallery painting has that name"),
    "bad_option": (422, "an option out of range (the size above the operator's cap)"),
    "key_required": (401, "this server takes requests with an API key only"),
    "bad_key": (401, "the API key is unknown or revoked"),
    "banned": (403, "the caller may not use the service"),
    "over_quota": (429, "the caller's renders for the last 24 hours are used up (Retry-After)"),
    "rate_limited": (429, "too many requests in a minute (Retry-After)"),
    "queue_full": (503, "the queue is full (Retry-After)"),
    "not_found": (404, "no such painting (a wrong token, or deleted after the retention period)"),
    "not_yours": (403, "the painting was asked for by another caller"),
    "not_ready": (409, "the painting is not finished yet"),
    "failed": (409, "the painting could not be made"),
    "cancelled": (409, "the painting was cancelled"),
    "finished": (409, "the painting is finished and cannot be cancelled"),
    "deleted": (410, "the picture was deleted after the retention period"),
}


class ApiError(Exception):
    """A refusal: ``code`` from ``CODES`` (which gives the status), a message for people."""

    def __init__(self, code: str, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = CODES[code][0]
        self.message = message
        self.retry_after_s = retry_after_s


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def response(error: ApiError) -> JSONResponse:
    headers = {}
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    return JSONResponse(error_body(error.code, error.message), status_code=error.status, headers=headers)


def install(app: FastAPI) -> None:
    """Answer refusals, invalid requests and unknown API paths in the one JSON shape."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return response(exc)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
        message = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid request"))
        return response(ApiError("invalid_request", message))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not request.url.path.startswith(API):  # the pages (and the admin side) keep their own
            return await http_exception_handler(request, exc)
        if exc.status_code == 404:
            return response(ApiError("not_found", "There is nothing here."))
        if exc.status_code == 405:
            return response(ApiError("method_not_allowed", "This path does not take that method."))
        return JSONResponse(error_body("invalid_request", str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
