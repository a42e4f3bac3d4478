"""A painting asked for on the web: the uploads checked, the painting found, the request admitted
and queued, by the same rules as a mention (``storage.admission``).

Uploads only: nothing is fetched from a URL on a caller's behalf. An image's type is judged by its
bytes, never its name or declared type; its pixel count is read from its header before anything
is decoded (Pillow's pixel limit, ``media.max_pixels``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.config import Config
from bot.errors import MediaError, PhotoTooSmall, TooManyPixels
from bot.gallery import Gallery
from bot.media import check_photo, sniff
from bot.options import RenderOptions, Strength
from bot.web.public.callers import PLATFORM, Caller
from bot.web.public.errors import ApiError
from storage import api_keys, jobs
from storage.admission import DAY, Limits, Refused, admit
from storage.models import Job

QUEUE_FULL_RETRY_S = 60.0


@dataclass(frozen=True)
class Queued:
    job: Job
    token: str  # shown to the caller once; only its hash is kept


def checked_image(data: bytes, which: str, config: Config) -> bytes:
    """``data`` if it is a usable image within the limits; else the refusal saying why."""
    limit = config.web.max_upload_bytes
    if len(data) > limit:
        raise ApiError("too_large", f"The {which} is more than the {limit:,} bytes allowed.")
    if sniff(data) is None:
        raise ApiError("unsupported_type", f"The {which} is not a JPEG, PNG, WebP or GIF image.")
    try:
        check_photo(data, claimed=None, max_pixels=config.media.max_pixels, min_side=config.bot.min_photo_side,
                    name=f"the {which}")
    except TooManyPixels as exc:
        raise ApiError("too_many_pixels", _sentence(str(exc))) from exc
    except PhotoTooSmall as exc:
        raise ApiError("too_small", _sentence(str(exc))) from exc
    except MediaError as exc:
        raise ApiError("damaged_image", _sentence(str(exc))) from exc
    return data


def style_image(painting: bytes | None, name: str | None, gallery: Gallery, config: Config) -> bytes:
    """The painting: the caller's file, or the gallery's painting called ``name``."""
    if painting is not None and name:
        raise ApiError("painting_ambiguous", "Send a painting file or a gallery painting's name, not both.")
    if painting is not None:
        return checked_image(painting, "painting", config)
    if not name:
        raise ApiError("painting_missing", "Send a painting: a file, or the name of one in the gallery.")
    found = gallery.named(name)
    if found is None:
        close = [p.nickname for p in gallery.closest(name)]
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ApiError("unknown_painting", f"The gallery has no painting called {name!r}.{hint}")
    return found.image()


def options(strength: str, keep_colours: bool, faces: bool, size: int | None, config: Config) -> RenderOptions:
    cap = config.web.max_size_px
    if size is not None and not 32 <= size <= cap:
        raise ApiError("bad_option", f"The size must be from 32 to {cap} pixels, got {size}.")
    return RenderOptions(strength=Strength(strength), keep_colours=keep_colours, protect_faces=faces,
                         size=size or config.web.default_size_px)


def queue(session: Session, caller: Caller, *, content: bytes, style: bytes, wanted: RenderOptions,
          config: Config, now: datetime) -> Queued:
    """Admit ``caller``'s request and queue it, in the caller's transaction; the refusal if not."""
    per_day = caller.per_day if caller.key_id is not None else config.web.anonymous_per_day
    if caller.key_id is None and per_day == 0:
        raise ApiError("key_required", "This server paints for holders of an API key only.")
    admission = admit(session, platform=PLATFORM, user_ref=caller.user_ref, username=caller.name,
                      limits=Limits(per_user_per_day=per_day, queue_limit=config.queue.queue_limit),
                      priority=caller.priority, now=now)
    if admission.refused is Refused.BANNED:
        raise ApiError("banned", "You may not use this service.")
    if admission.refused is Refused.OVER_QUOTA:
        oldest = jobs.first_submitted_since(session, admission.user_id, now - DAY)
        frees = (oldest + DAY - now) if oldest is not None else DAY
        raise ApiError("over_quota", f"You've had your {per_day} pictures for the last 24 hours.",
                       retry_after_s=max(frees, timedelta(seconds=1)).total_seconds())
    if admission.refused is Refused.QUEUE_FULL:
        raise ApiError("queue_full", "The queue is full right now. Please try again in a little while.",
                       retry_after_s=QUEUE_FULL_RETRY_S)
    token = secrets.token_urlsafe(24)
    job = jobs.enqueue(session, content_image=content, style_image=style, user_id=admission.user_id,
                       author_username=caller.name, priority=admission.priority, options=wanted.to_json(),
                       token_hash=api_keys.digest(token))
    return Queued(job, token)


def _sentence(text: str) -> str:
    text = text[0].upper() + text[1:] if text else text
    return text if text.endswith(".") else text + "."
