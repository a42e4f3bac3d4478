"""A job's images as stored, or downscaled on the server (``?size=160``); a placeholder saying why
for any image that cannot be shown (not an image, damaged, over Pillow's pixel limit)."""

from __future__ import annotations

import hashlib
import io
import re
import textwrap
import warnings
from typing import Annotated
from xml.sax.saxutils import escape

from fastapi import Depends, Request
from fastapi.responses import Response
from PIL import Image, ImageOps, UnidentifiedImageError

from bot import admin
from bot.admin import AdminError
from bot.web.admin.auth import Login, Refusal, context, require_login
from bot.web.admin.routing import admin_router
from storage.reports import ImageRole

router = admin_router()

ROLES: tuple[ImageRole, ...] = ("content", "style", "result")
MIN_SIZE, MAX_SIZE = 16, 2048


class Unshowable(Exception):
    """Bytes that cannot be shown as a picture; the message says why, in words."""


def _open(data: bytes) -> Image.Image:
    """The image, or Unshowable: Pillow's pixel limit is a refusal here, never a warning let pass."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow names the size only in its message
        pixels = f"{int(found.group(1)):,} pixels" if found else "more pixels than"
        raise Unshowable(f"too large to show: {pixels}, over the limit of {Image.MAX_IMAGE_PIXELS:,}") from exc
    except UnidentifiedImageError as exc:
        raise Unshowable("not an image this server can read") from exc


def thumbnail(data: bytes, size: int) -> tuple[bytes, str]:
    """``data`` scaled to fit ``size`` x ``size`` (never enlarged), as (bytes, content type).

    JPEG comes back as JPEG, anything with transparency as PNG; Unshowable if it cannot be read.
    """
    try:
        with _open(data) as source:
            # For a JPEG this decodes at 1/2, 1/4 or 1/8 scale directly: far less work for a thumbnail.
            source.draft("RGB", (size, size))
            picture = ImageOps.exif_transpose(source)
            picture.thumbnail((size, size))
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's errors for truncated or damaged files
        raise Unshowable(f"damaged: {exc}") from exc
    out = io.BytesIO()
    if picture.mode in ("RGBA", "LA") or (picture.mode == "P" and "transparency" in picture.info):
        picture.save(out, "PNG", optimize=True)
        return out.getvalue(), "image/png"
    picture.convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue(), "image/jpeg"


def content_type(data: bytes) -> str:
    """The image's MIME type from its header; Unshowable if it is none (or too large to show)."""
    with _open(data) as found:
        kind = Image.MIME.get(found.format or "")
    if kind is None:
        raise Unshowable(f"a {found.format} image, which browsers do not show")
    return kind


def placeholder(title: str, reason: str, hint: str = "", size: int = 480) -> bytes:
    """An SVG card with ``title``, ``reason`` and a ``hint`` line (escaped, wrapped): what an <img>
    shows instead."""
    lines = textwrap.wrap(reason, 40)[:5] + ([hint] if hint else [])
    spans = "".join(f'<tspan x="50%" dy="{0 if n == 0 else 1.3}em">{escape(line)}</tspan>' for n, line in enumerate(lines))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size * 3 // 4}" viewBox="0 0 320 240">'
        '<rect width="320" height="240" rx="8" fill="#f1f3f5" stroke="#ced4da"/>'
        '<text x="50%" y="78" text-anchor="middle" font-family="system-ui,sans-serif" font-size="15" '
        f'font-weight="600" fill="#495057">{escape(title)}</text>'
        '<text x="50%" y="112" text-anchor="middle" font-family="system-ui,sans-serif" font-size="12" '
        f'fill="#6b7480">{spans}</text></svg>'
    ).encode()


def _svg(title: str, reason: str, hint: str, etag: str) -> Response:
    return Response(placeholder(title, reason, hint), media_type="image/svg+xml",
                    headers={"ETag": f'"{etag}"', "Cache-Control": "private, max-age=60",
                             "X-Forger-Placeholder": reason.encode("ascii", "replace").decode()[:200]})


@router.get("/jobs/{job_id:int}/image/{role}", name="admin.image")
def image(request: Request, job_id: int, role: str, _: Annotated[Login, Depends(require_login)]) -> Response:
    """One of the job's images; ``?size=N`` for a thumbnail of at most N pixels a side."""
    if role not in ROLES:
        raise Refusal(404, f"no image role {role!r} (known: {', '.join(ROLES)})")
    asked = request.query_params.get("size")
    size = int(asked) if asked and asked.isascii() and asked.isdigit() and len(asked) < 6 else None
    if asked is not None and (size is None or not MIN_SIZE <= size <= MAX_SIZE):
        raise Refusal(400, f"size must be a whole number from {MIN_SIZE} to {MAX_SIZE}, got: {asked!r}")
    try:
        with context(request).reads.begin() as s:
            data = admin.image(s, job_id, role)  # type: ignore[arg-type]  # checked against ROLES
    except AdminError as exc:
        raise Refusal(404, str(exc)) from exc
    if not data:
        raise Refusal(404, f"job {job_id} has no {role} image yet")
    etag = hashlib.blake2b(data, digest_size=12).hexdigest() + (f"-{size}" if size else "")
    if f'"{etag}"' in request.headers.get("if-none-match", ""):
        # The browser has it: no need to scale it again.
        return Response(status_code=304, headers={"ETag": f'"{etag}"', "Cache-Control": "private, max-age=60"})
    try:
        if size is None:
            kind = content_type(data)
            response = Response(data, media_type=kind)
        else:
            small, kind = thumbnail(data, size)
            response = Response(small, media_type=kind)
    except Unshowable as exc:
        if size is None and "not an image" in str(exc):  # offered as it is, to look at elsewhere
            return Response(data, media_type="application/octet-stream", headers={
                "Content-Disposition": f"attachment; filename=job-{job_id}-{role}", "Cache-Control": "private, max-age=60"})
        return _svg(f"Job {job_id}: {role} image", f"{exc}; saved with:", f"forger job-image {job_id} {role} -o FILE",
                    etag)
    # Kept a minute in the browser's own cache only; after that it asks again (past the login
    # check) and gets a cheap 304 while the bytes are unchanged.
    response.headers["ETag"] = f'"{etag}"'
    response.headers["Cache-Control"] = "private, max-age=60"
    return response
