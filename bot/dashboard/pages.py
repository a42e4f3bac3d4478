"""The dashboard's pages: the queue, a job, failures, users, the X API budget; and /api/queue.

Each view opens one transaction, asks ``bot.admin`` (or the ledger, for the chart), and renders
the frozen results after the transaction has closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Blueprint, abort, flash, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from bot import admin
from bot.admin import AdminError, QueueRow
from bot.dashboard.charts import calls_and_spend
from bot.dashboard.context import settings
from storage import ledger
from storage.models import JobState, utcnow

blueprint = Blueprint("pages", __name__)

ACTIVE = frozenset({"rendering", "uploading"})
CHART_DAYS = 30


@dataclass(frozen=True)
class Line:
    """A queue row as a page shows it: the row and its ETA (seconds until likely done)."""

    row: QueueRow
    eta_s: float | None


def _eta(row: QueueRow, median_render_s: float | None) -> float | None:
    # As storage.jobs.eta_s for one worker: a queued job waits for those ahead of it, then renders;
    # a rendering one has the rest of its own render to go.
    if median_render_s is None:
        return None
    if row.position is not None:
        return median_render_s * row.position
    if row.state == "rendering":
        return median_render_s * (1 - (row.progress or 0.0))
    return None


def _filters() -> tuple[tuple[str, ...], str | None]:
    states = tuple(s for s in request.args.getlist("state") if s)
    user = request.args.get("user", "").strip() or None
    return states, user


def _lines(states: tuple[str, ...], user: str | None) -> tuple[list[Line], admin.Stats, int]:
    """The queue's rows with their ETAs, the stats, and how many jobs match in all (a page
    shows ``admin.QUEUE_PAGE`` at most); AdminError for an unknown state."""
    with settings().reads.begin() as s:
        rows = admin.queue(s, states=states, user=user)
        total = admin.queue_size(s, states=states, user=user) if len(rows) == admin.QUEUE_PAGE else len(rows)
        found = admin.stats(s, budget_usd=settings().budget_usd)
    return [Line(r, _eta(r, found.median_render_s)) for r in rows], found, total


@blueprint.route("/")
def queue() -> ResponseReturnValue:
    """The queue: every job, newest first, with thumbnails, progress and ETA."""
    states, user = _filters()
    lines: list[Line] = []
    found: admin.Stats | None = None
    total = 0
    try:
        lines, found, total = _lines(states, user)
    except AdminError as exc:
        flash(str(exc), "error")
    return render_template(
        "queue.html", lines=lines, stats=found, states=states, user=user or "",
        all_states=[s.value for s in JobState], total=total,
    )


@blueprint.route("/api/queue")
def api_queue() -> ResponseReturnValue:
    """The queue page's rows as JSON (same filters): what its script refreshes the bars from."""
    states, user = _filters()
    try:
        lines, _, _ = _lines(states, user)
    except AdminError as exc:
        abort(400, str(exc))
    return jsonify(rows=[admin.to_json(line.row) | {"eta_s": line.eta_s} for line in lines])


@blueprint.route("/failures")
def failures() -> ResponseReturnValue:
    """Failed jobs with their errors, each with a retry button."""
    lines, found, total = _lines(("failed",), None)
    return render_template("failures.html", lines=lines, stats=found, total=total, states=("failed",))


@blueprint.route("/jobs/<int:job_id>")
def job(job_id: int) -> ResponseReturnValue:
    """Everything about one job: request, history, timings, its three images, retry and cancel."""
    try:
        with settings().reads.begin() as s:
            detail = admin.job(s, job_id)
    except AdminError as exc:
        abort(404, str(exc))
    return render_template("job.html", job=detail, row=detail.row, active=detail.row.state in ACTIVE | {"queued"})


@blueprint.route("/users")
def users() -> ResponseReturnValue:
    """Everyone who has written to the bot: quota used, bans, priority, with forms to change them."""
    with settings().reads.begin() as s:
        everyone = admin.everyone(s)
    return render_template("users.html", users=everyone, quota=settings().quota_per_day)


@blueprint.route("/budget")
def budget() -> ResponseReturnValue:
    """The month's X API spend against the budget, the rate windows, calls and spend per day."""
    now = utcnow()
    first = (now - timedelta(days=CHART_DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    with settings().reads.begin() as s:
        found = admin.stats(s, budget_usd=settings().budget_usd, now=now)
        days = ledger.calls_by_day(s, since=first)
    return render_template(
        "budget.html", stats=found, now=now, chart=calls_and_spend(days, first=first.date(), count=CHART_DAYS),
        days=days,
    )


# The brand's "F" on its gradient, so that browsers do not ask for a /favicon.ico that is not there.
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><defs><linearGradient id="g" x2="1" y2="1">'
    '<stop offset="0" stop-color="#f59f00"/><stop offset=".55" stop-color="#d6336c"/>'
    '<stop offset="1" stop-color="#3b5bdb"/></linearGradient></defs>'
    '<rect width="32" height="32" rx="7" fill="url(#g)"/>'
    '<path d="M11 8h11v4h-7v3h6v4h-6v6h-4z" fill="#fff"/></svg>'
)


@blueprint.route("/favicon.svg")
def favicon() -> ResponseReturnValue:
    """The tab's icon (public, like the stylesheet: it tells nothing)."""
    return FAVICON, 200, {"Content-Type": "image/svg+xml", "Cache-Control": "public, max-age=86400"}


def http_error(exc: HTTPException) -> ResponseReturnValue:
    """Errors as a short page (as JSON for images and /api/), never a traceback."""
    if request.path.startswith("/api/") or "/image/" in request.path:
        return jsonify(error=exc.description), exc.code or 500
    return render_template("error.html", error=exc), exc.code or 500


@blueprint.app_template_filter("duration")
def duration(seconds: float | None) -> str:
    """``95`` -> ``1m 35s``: short enough for a table cell."""
    if seconds is None:
        return "–"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600}h"


@blueprint.app_template_filter("when")
def when(at: datetime | None) -> str:
    return "–" if at is None else f"{at:%Y-%m-%d %H:%M:%S} UTC"
