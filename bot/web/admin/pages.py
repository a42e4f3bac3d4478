"""The admin pages: the queue, a job, failures, users, the API budget, failed logins; /api/queue.

Each view opens one read-only transaction, asks ``bot.admin`` (or the ledger, for the chart),
and renders the frozen results after the transaction has closed. Lists come a page at a time
(``?page=N``), each page for the same few queries.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from bot.platforms import budgets_usd
from bot import admin
from bot.admin import AdminError, Page, QueueRow
from bot.web.admin.auth import REMEMBERED, Login, Refusal, context, now, require_login
from bot.web.admin.charts import calls_and_spend
from bot.web.admin.routing import admin_router
from bot.web.admin.templating import render
from storage import admins, ledger
from storage.jobs import WAITING
from storage.models import JobState

router = admin_router()
LoggedIn = Annotated[Login, Depends(require_login)]

CHART_DAYS = 30
STATIC = Path(__file__).with_name("static")


def _number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) < 7 and int(raw) > 0 else 1


def _filters(request: Request) -> tuple[tuple[str, ...], str | None]:
    states = tuple(s for s in request.query_params.getlist("state") if s)
    user = request.query_params.get("user", "").strip() or None
    return states, user


def _queue(request: Request, states: tuple[str, ...], user: str | None) -> tuple[Page[QueueRow], admin.Stats]:
    """A page of the queue and the stats; AdminError for an unknown state."""
    with context(request).reads.begin() as s:
        page = admin.queue_page(s, states=states, user=user, number=_number(request))
        found = admin.stats(s, budget_usd=sum(budgets_usd(context(request).config).values()))
    return page, found


def _failed_logins(request: Request) -> int:
    with context(request).reads.begin() as s:
        return sum(f.count for f in admins.failed_logins(s, since=now(request) - REMEMBERED))


@router.get("/", name="admin.queue", response_class=HTMLResponse)
def queue(request: Request, _: LoggedIn) -> Response:
    """The queue: every job, newest first, with thumbnails, progress and ETA."""
    states, user = _filters(request)
    page: Page[QueueRow] = Page([], 0, 1, admin.PAGE)
    found: admin.Stats | None = None
    messages = []
    try:
        page, found = _queue(request, states, user)
    except AdminError as exc:
        messages.append(("error", str(exc)))
    return render(request, "queue.html", messages=messages, page=page, stats=found, states=states, user=user or "",
                  all_states=[s.value for s in JobState], here="queue", failed_logins=_failed_logins(request))


@router.get("/api/queue", name="admin.api_queue")
def api_queue(request: Request, _: LoggedIn) -> Response:
    """The queue page's rows as JSON (same filters and page): what its script refreshes the bars from."""
    states, user = _filters(request)
    try:
        page, _stats = _queue(request, states, user)
    except AdminError as exc:
        raise Refusal(400, str(exc)) from exc
    return JSONResponse({"rows": admin.to_json(page.rows), "total": page.total})


@router.get("/failures", name="admin.failures", response_class=HTMLResponse)
def failures(request: Request, _: LoggedIn) -> Response:
    """Failed jobs with their errors, each with a retry button."""
    page, found = _queue(request, ("failed",), None)
    return render(request, "failures.html", page=page, stats=found, states=("failed",), here="failures")


@router.get("/jobs/{job_id:int}", name="admin.job", response_class=HTMLResponse)
def job(request: Request, job_id: int, _: LoggedIn) -> Response:
    """Everything about one job: request, history, timings, its three images, retry and cancel."""
    try:
        with context(request).reads.begin() as s:
            detail = admin.job(s, job_id)
    except AdminError as exc:
        raise Refusal(404, str(exc)) from exc
    waiting = detail.row.state in {state.value for state in WAITING}
    return render(request, "job.html", job=detail, row=detail.row, active=waiting, here="queue")


@router.get("/users", name="admin.users", response_class=HTMLResponse)
def users(request: Request, _: LoggedIn) -> Response:
    """Everyone who has written to the bot, a page at a time: quota used, bans, priority, and forms."""
    with context(request).reads.begin() as s:
        page = admin.users_page(s, number=_number(request))
    return render(request, "users.html", page=page, quota=context(request).config.queue.per_user_per_day,
                  here="users")


@router.get("/budget", name="admin.budget", response_class=HTMLResponse)
def budget(request: Request, _: LoggedIn) -> Response:
    """The month's API spend against the budget, per platform; the rate windows; calls and spend per day."""
    at = now(request)
    first = (at - timedelta(days=CHART_DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    with context(request).reads.begin() as s:
        found = admin.stats(s, budget_usd=sum(budgets_usd(context(request).config).values()), now=at)
        days = ledger.calls_by_day(s, since=first)
    return render(request, "budget.html", stats=found, now=at, days=days, here="budget",
                  chart=calls_and_spend(days, first=first.date(), count=CHART_DAYS))


@router.get("/logins", name="admin.logins", response_class=HTMLResponse)
def logins(request: Request, _: LoggedIn) -> Response:
    """Failed logins of the last day by address, and the latest attempts."""
    with context(request).reads.begin() as s:
        by_address = admins.failed_logins(s, since=now(request) - REMEMBERED)
        latest = [(a.at, a.address, a.ok) for a in admins.recent_logins(s)]
    return render(request, "logins.html", by_address=by_address, latest=latest, here="logins")


# The brand's "F" on its gradient, so that browsers do not ask for a /favicon.ico that is not there.
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><defs><linearGradient id="g" x2="1" y2="1">'
    '<stop offset="0" stop-color="#f59f00"/><stop offset=".55" stop-color="#d6336c"/>'
    '<stop offset="1" stop-color="#3b5bdb"/></linearGradient></defs>'
    '<rect width="32" height="32" rx="7" fill="url(#g)"/>'
    '<path d="M11 8h11v4h-7v3h6v4h-6v6h-4z" fill="#fff"/></svg>'
)
PUBLIC_CACHE = {"Cache-Control": "public, max-age=3600"}


@router.get("/favicon.svg", name="admin.favicon")
def favicon() -> Response:
    """The tab's icon (public, like the stylesheet: it tells nothing)."""
    return Response(FAVICON, media_type="image/svg+xml", headers=PUBLIC_CACHE)


@router.get("/static/forger.css", name="admin.css")
def stylesheet() -> Response:
    return Response((STATIC / "forger.css").read_bytes(), media_type="text/css", headers=PUBLIC_CACHE)


def error_page(request: Request, refusal: Refusal) -> Response:
    """A refusal as a short page (as JSON for data routes), never a traceback."""
    values: dict[str, Any] = {"code": refusal.status, "message": refusal.message, "here": ""}
    return render(request, "error.html", refusal.status, headers=refusal.headers, **values)
