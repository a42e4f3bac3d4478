"""The public page: upload or take a photo, pick a painting, follow the progress, get the picture.

Plain HTML from templates and one same-origin script (``static/web.js``) that talks to the API;
nothing external, nothing inline (the CSP allows neither).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from bot.web import context
from bot.web.public.api import slug

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)


def _common(request: Request) -> dict[str, object]:
    web = context(request).config.web
    sizes = sorted({s for s in (256, 512, 768, 1024, web.default_size_px, web.max_size_px) if s <= web.max_size_px})
    return {
        "retention_days": f"{context(request).config.retention.images_days:g}",
        "max_upload_mb": round(web.max_upload_bytes / 1024 / 1024, 1),
        "sizes": sizes,
        "default_size": web.default_size_px,
        "nonce": request.state.csp_nonce,
    }


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    paintings = [{"name": slug(p.nickname), "title": p.title, "artist": p.artist, "year": p.year}
                 for p in request.app.state.public.gallery.paintings]
    return templates.TemplateResponse(request, "index.html", {**_common(request), "paintings": paintings})


@router.get("/p/{token}", response_class=HTMLResponse)
def painting(request: Request, token: str) -> HTMLResponse:
    """A painting's own page: the share link (the token is all it needs, until retention deletes it)."""
    return templates.TemplateResponse(request, "painting.html", {**_common(request), "token": token})
