"""The web API, ``/api/v1/…``: submit a photo and a painting, follow the job, fetch the picture.

A job's URLs carry an unguessable token (only its hash is stored): whoever holds the token sees
the painting (a share link), only its caller may cancel it. The routes are documented in the
OpenAPI document at ``/api/v1/openapi.json``.

Following a painting costs the database next to nothing: its event streams and status polls are
answered from one reading of all the followed jobs per tick (``events.Watcher``), and a polling
key is read once a second (``callers.KnownKeys``), on the event loop without a thread's hop.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.gallery import Gallery
from bot.media import sniff
from bot.web import WebContext
from bot.web import context as context_of
from bot.web.public import intake, thumbnails
from bot.web.public.callers import PLATFORM, Caller, KnownKeys, RateLimit, identify
from bot.web.public.errors import API, CODES, ApiError
from bot.web.public.events import Watcher
from bot.web.public.status import FINISHED, PaintingStatus, QueuePlaces, RenderTimes, describe, state_of, status_of
from storage import api_keys, jobs, users
from storage.models import Job

KEEP_ALIVE_S = 15.0  # a comment line this often keeps proxies from closing a quiet stream
STREAM_MAX_S = 3600.0  # a stream ends after this long; the client reconnects


@dataclass(frozen=True)
class Public:
    """What the public side keeps beside the ``WebContext``: the gallery, the rate limit, the
    median render time, the queue's places and the API keys (cached), and the one reader of the
    event streams and status polls."""

    gallery: Gallery
    rate: RateLimit
    times: RenderTimes
    places: QueuePlaces
    keys: KnownKeys
    watcher: Watcher


def _public(request: Request) -> Public:
    public: Public = request.app.state.public
    return public


def caller(request: Request) -> Caller:
    """Who calls (a key's holder or an address, its key read afresh), counted against the rate limit."""
    public = _public(request)
    found = identify(request, context_of(request).reads, public.keys)
    public.rate.check(found)
    return found


async def poller(request: Request) -> Caller:
    """Who follows a painting: as ``caller``, but a key read in the last second is not read again."""
    public = _public(request)
    found = public.keys.recent(request)
    if found is None:
        found = await run_in_threadpool(identify, request, context_of(request).reads, public.keys)
    public.rate.check(found)
    return found


async def _context(request: Request) -> WebContext:
    # async: FastAPI runs a plain function dependency in a worker thread, a hop for nothing here.
    return context_of(request)


Ctx = Annotated[WebContext, Depends(_context)]
Who = Annotated[Caller, Depends(caller)]
Poller = Annotated[Caller, Depends(poller)]


def _refusals(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI's ``responses`` for these refusal codes (grouped by status)."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(CODES[code][0], []).append(code)
    return {status: {"description": "; ".join(f"`{c}`: {CODES[c][1]}" for c in found), "model": ErrorBody}
            for status, found in by_status.items()}


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class GalleryPainting(BaseModel):
    name: str  # what ``painting_name`` takes
    title: str
    artist: str
    year: str
    thumbnail: str


router = APIRouter(prefix=API, tags=["paintings"])
COMMON = ("bad_key", "rate_limited")


@router.post(
    "/paintings", status_code=202, response_model=PaintingStatus,
    summary="Paint a photo in the style of a painting",
    responses=_refusals("invalid_request", "unsupported_type", "too_large", "length_required", "too_many_pixels",
                        "too_small", "bad_shape", "damaged_image", "painting_missing", "painting_ambiguous", "unknown_painting",
                        "bad_option", "key_required", "banned", "over_quota", "queue_full", *COMMON),
)
def submit(
    request: Request, response: Response, context: Ctx, who: Who,
    photo: Annotated[UploadFile, File(description="The photo to paint (JPEG, PNG, WebP or GIF).")],
    painting: Annotated[UploadFile | None, File(description="The painting, as a file; or give painting_name.")] = None,
    painting_name: Annotated[str | None, Form(description="A gallery painting's name (GET /api/v1/gallery).")] = None,
    strength: Annotated[Literal["low", "normal", "high"], Form()] = "normal",
    keep_colours: Annotated[bool, Form(description="Keep the photo's colours, take only the brushwork.")] = False,
    faces: Annotated[bool, Form(description="Keep faces recognisable.")] = True,
    size: Annotated[int | None, Form(description="The picture's longest side in pixels, up to the server's cap.")]
    = None,
) -> PaintingStatus:
    """Queue a painting: ``202`` with its status and URLs (``Location``: the status URL)."""
    config = context.config
    content = intake.checked_image(_read(photo, config.web.max_upload_bytes), "photo", config)
    wanted = intake.options(strength, keep_colours, faces, size, config)
    style = intake.style_image(_read(painting, config.web.max_upload_bytes) if painting is not None else None,
                               painting_name, _public(request).gallery, config)
    now = datetime.fromtimestamp(context.clock(), UTC)
    with context.sessions.begin() as session:  # the write lock (SQLite's) for as short as can be
        queued = intake.queue(session, who, content=content, style=style, wanted=wanted, config=config, now=now)
    status = _status(context, _public(request), queued.token, str(request.base_url))
    response.headers["Location"] = status.links.status
    return status


def _read(upload: UploadFile, limit: int) -> bytes:
    """An upload's bytes, at most one more than ``limit`` (enough to say it is too large)."""
    return upload.file.read(limit + 1)


def _not_found() -> ApiError:
    return ApiError("not_found", "No such painting: the link is wrong, or the picture was deleted.")


def _job(session: Session, token: str) -> Job:
    job = jobs.by_token(session, api_keys.digest(token)) if len(token) <= 64 else None
    if job is None:
        raise _not_found()
    return job


def _status(context: WebContext, public: Public, token: str, base: str) -> PaintingStatus:
    with context.reads() as session:
        job = jobs.glance_by_token(session, api_keys.digest(token)) if len(token) <= 64 else None
        if job is None:
            raise _not_found()
        return describe(session, job, token, base, public.times, public.places)


@router.get("/paintings/{token}", response_model=PaintingStatus, summary="A painting's state, place, ETA, progress",
            responses=_refusals("not_found", *COMMON))
async def status(token: str, request: Request, context: Ctx, who: Poller) -> PaintingStatus:
    """The painting as the database held it at most 0.75 s ago: a job polled lately is read with
    every other such job, twice a second, and its polls answered from that reading."""
    public, base = _public(request), str(request.base_url)
    if len(token) > 64:
        raise _not_found()
    token_hash = api_keys.digest(token)
    reading = public.watcher.latest(token_hash)  # a job polled lately: from the last tick's reading
    if reading is None:
        found = await run_in_threadpool(_status, context, public, token, base)
        public.watcher.polled(token_hash)
        return found
    job = reading.jobs.get(token_hash)
    if job is None:
        raise _not_found()
    return status_of(job, token, base, position=reading.positions.get(job.id), median_s=reading.median_s)


@router.get("/paintings/{token}/events", summary="The painting's status as server-sent events, until it ends",
            response_class=StreamingResponse, responses={
                200: {"content": {"text/event-stream": {}},
                      "description": "`event: status` with the same JSON as GET of the painting, each time it "
                                     "changes; the stream ends once the painting is done, failed or cancelled."},
                **_refusals("not_found", *COMMON)})
async def events(token: str, request: Request, context: Ctx, who: Poller) -> StreamingResponse:
    base = str(request.base_url)
    public = _public(request)
    first = await run_in_threadpool(_status, context, public, token, base)  # a wrong token is refused, not streamed
    token_hash = api_keys.digest(token)

    async def stream() -> AsyncIterator[str]:
        yield f"event: status\ndata: {first.model_dump_json()}\n\n"
        if first.state in FINISHED:
            return
        last, started = first.model_dump_json(), time.monotonic()
        async for reading in public.watcher.follow(token_hash, wait_s=KEEP_ALIVE_S):
            if reading is None:
                yield ": still here\n\n"
                continue
            if token_hash not in reading.asked:  # read before this stream began: the next one tells
                continue
            job = reading.jobs.get(token_hash)
            if job is None:  # deleted meanwhile
                yield f"event: error\ndata: {json.dumps({'code': 'not_found'})}\n\n"
                return
            current = status_of(job, token, base, position=reading.positions.get(job.id), median_s=reading.median_s)
            data = current.model_dump_json()
            if data != last:
                yield f"event: status\ndata: {data}\n\n"
                last = data
            if current.state in FINISHED or time.monotonic() - started > STREAM_MAX_S:
                return

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _image(context: WebContext, token: str, column: Any) -> tuple[Job, bytes | None]:
    with context.reads() as session:
        job = _job(session, token)
        return job, session.scalar(select(column).where(Job.id == job.id))


def _picture(data: bytes, name: str, download: bool) -> Response:
    kind = sniff(data) or "application/octet-stream"
    extension = kind.split("/")[-1].replace("jpeg", "jpg")
    disposition = "attachment" if download else "inline"
    return Response(data, media_type=kind, headers={
        "Content-Disposition": f'{disposition}; filename="{name}.{extension}"',
        "Cache-Control": "private, max-age=3600",
    })


@router.get("/paintings/{token}/result", summary="The painted picture (JPEG)",
            response_class=Response, responses={200: {"content": {"image/jpeg": {}}},
                                                **_refusals("not_found", "not_ready", "failed", "cancelled",
                                                            "deleted", *COMMON)})
def result(token: str, context: Ctx, who: Who, download: bool = False) -> Response:
    job, data = _image(context, token, Job.result_image)
    state = state_of(job)
    if state == "cancelled":
        raise ApiError("cancelled", "This painting was cancelled.")
    if state == "failed":
        raise ApiError("failed", "Sorry, this picture could not be painted.")
    if state != "done":
        raise ApiError("not_ready", "The picture is not painted yet: follow its status or events.")
    if data is None:
        raise ApiError("deleted", "The picture was deleted after the retention period.")
    return _picture(data, f"forger-{token[:8]}", download)


@router.get("/paintings/{token}/photo", summary="The photo the painting was asked for",
            response_class=Response, responses={200: {"content": {"image/jpeg": {}}},
                                                **_refusals("not_found", "deleted", *COMMON)})
def photo(token: str, context: Ctx, who: Who) -> Response:
    _job_found, data = _image(context, token, Job.content_image)
    if not data:
        raise ApiError("deleted", "The photo was deleted after the retention period.")
    return _picture(data, f"photo-{token[:8]}", False)


@router.delete("/paintings/{token}", response_model=PaintingStatus, summary="Cancel a painting (its caller only)",
               responses=_refusals("not_found", "not_yours", "finished", "cancelled", *COMMON))
async def cancel(token: str, request: Request, context: Ctx, who: Who) -> PaintingStatus:
    await run_in_threadpool(_cancel, context, token, who)
    public = _public(request)
    public.watcher.changed(api_keys.digest(token))  # its polls read it afresh
    return await run_in_threadpool(_status, context, public, token, str(request.base_url))


def _cancel(context: WebContext, token: str, who: Caller) -> None:
    with context.sessions.begin() as session:
        job = _job(session, token)
        owner = users.get(session, job.user_id) if job.user_id is not None else None
        if owner is None or (owner.platform, owner.user_ref) != (PLATFORM, who.user_ref):
            raise ApiError("not_yours", "Only whoever asked for this painting may cancel it.")
        state = state_of(job)
        if state == "cancelled":
            raise ApiError("cancelled", "This painting was cancelled already.")
        if state in FINISHED:
            raise ApiError("finished", "This painting is finished; it can no longer be cancelled.")
        jobs.cancel(session, job.id, reason="cancelled by its caller on the web")


@router.get("/gallery", response_model=list[GalleryPainting], summary="The gallery's paintings",
            responses=_refusals(*COMMON))
def gallery(request: Request, who: Who) -> list[GalleryPainting]:
    base = str(request.base_url)
    return [GalleryPainting(name=slug(p.nickname), title=p.title, artist=p.artist, year=p.year,
                            thumbnail=f"{base}api/v1/gallery/{slug(p.nickname)}/thumbnail")
            for p in _public(request).gallery.paintings]


@router.get("/gallery/{name}/thumbnail", summary="A gallery painting's thumbnail (JPEG)", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}, **_refusals("not_found")})
def thumbnail(name: str, request: Request) -> Response:
    found = _public(request).gallery.named(name)
    if found is None:
        raise ApiError("not_found", f"The gallery has no painting called {name!r}.")
    data = thumbnails.thumbnail(found.path)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})


def slug(name: str) -> str:
    """A painting's name as a URL part: "starry night" → "starry-night" (``Gallery.named`` reads both)."""
    return name.replace(" ", "-")
