"""A job's images as stored, or downscaled to a thumbnail on the server (``?size=160``)."""

from __future__ import annotations

import hashlib
import io

from flask import Blueprint, Response, abort, request
from flask.typing import ResponseReturnValue
from PIL import Image, ImageOps, UnidentifiedImageError

from bot import admin
from bot.admin import AdminError, ImageRole
from bot.dashboard.context import settings

blueprint = Blueprint("images", __name__)

ROLES: tuple[ImageRole, ...] = ("content", "style", "result")
MIN_SIZE, MAX_SIZE = 16, 2048


def thumbnail(data: bytes, size: int) -> tuple[bytes, str]:
    """``data`` scaled to fit ``size`` x ``size`` (never enlarged), as (bytes, content type).

    JPEG comes back as JPEG, anything with transparency as PNG.
    """
    with Image.open(io.BytesIO(data)) as source:
        # For a JPEG this decodes at 1/2, 1/4 or 1/8 scale directly: far less work for a thumbnail.
        source.draft("RGB", (size, size))
        picture = ImageOps.exif_transpose(source)
    picture.thumbnail((size, size))
    out = io.BytesIO()
    if picture.mode in ("RGBA", "LA") or (picture.mode == "P" and "transparency" in picture.info):
        picture.save(out, "PNG", optimize=True)
        return out.getvalue(), "image/png"
    picture.convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue(), "image/jpeg"


def content_type(data: bytes) -> str | None:
    """The image's MIME type from its header, or None if Pillow cannot read it."""
    try:
        with Image.open(io.BytesIO(data)) as found:
            return Image.MIME.get(found.format or "")
    except UnidentifiedImageError:
        return None


@blueprint.route("/jobs/<int:job_id>/image/<role>")
def image(job_id: int, role: str) -> ResponseReturnValue:
    """One of the job's images; ``?size=N`` for a thumbnail of at most N pixels a side."""
    if role not in ROLES:
        abort(404, f"no image role {role!r} (known: {', '.join(ROLES)})")
    asked = request.args.get("size")
    size = int(asked) if asked and asked.isascii() and asked.isdigit() else None
    if asked is not None and (size is None or not MIN_SIZE <= size <= MAX_SIZE):
        abort(400, f"size must be a whole number from {MIN_SIZE} to {MAX_SIZE}, got: {asked!r}")
    try:
        with settings().reads.begin() as s:
            data = admin.image(s, job_id, role)  # type: ignore[arg-type]  # checked against ROLES
    except AdminError as exc:
        abort(404, str(exc))
    if not data:
        abort(404, f"job {job_id} has no {role} image yet")
    etag = hashlib.blake2b(data, digest_size=12).hexdigest() + (f"-{size}" if size else "")
    if etag in request.if_none_match:
        response = Response(status=304)  # the browser has it: no need to scale it again
    elif size is None:
        kind = content_type(data)
        response = Response(data, mimetype=kind or "application/octet-stream")
        if kind is None:
            response.headers["Content-Disposition"] = f"attachment; filename=job-{job_id}-{role}"
    else:
        try:
            small, kind = thumbnail(data, size)
        except (UnidentifiedImageError, OSError) as exc:
            abort(415, f"job {job_id}'s {role} image cannot be read: {exc}")
        response = Response(small, mimetype=kind)
    # Kept a minute in the browser's own cache only; after that it asks again (past the login
    # check) and gets a cheap 304 while the bytes are unchanged.
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, max-age=60"
    return response
