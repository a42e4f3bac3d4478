"""What the dashboard's buttons do: retry, cancel, ban, unban, priority. Each is a POST form.

``auth.gate`` has already checked the login and the CSRF token. Each action runs in its own
transaction, flashes what happened (or the ``AdminError``'s message) and redirects back.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from bot import admin
from bot.admin import AdminError
from bot.dashboard.auth import local
from bot.dashboard.context import settings

blueprint = Blueprint("actions", __name__)

BY = "dashboard"


def _act(action: Callable[[Session], object], done: str, back: str) -> ResponseReturnValue:
    try:
        with settings().sessions.begin() as s:
            action(s)
    except AdminError as exc:
        flash(str(exc), "error")
    else:
        flash(done, "ok")
    return redirect(local(request.form.get("next"), back))


@blueprint.route("/jobs/<int:job_id>/retry", methods=["POST"])
def retry(job_id: int) -> ResponseReturnValue:
    return _act(lambda s: admin.retry(s, job_id, by=BY), f"Job {job_id} is queued again.",
                url_for("pages.job", job_id=job_id))


@blueprint.route("/jobs/<int:job_id>/cancel", methods=["POST"])
def cancel(job_id: int) -> ResponseReturnValue:
    return _act(lambda s: admin.cancel(s, job_id, by=BY), f"Job {job_id} is cancelled.",
                url_for("pages.job", job_id=job_id))


@blueprint.route("/users/<name>/ban", methods=["POST"])
def ban(name: str) -> ResponseReturnValue:
    reason = request.form.get("reason", "").strip() or "banned from the dashboard"
    return _act(lambda s: admin.ban(s, name, reason=reason),
                f"@{name} is banned ({reason}); their jobs not yet posted are cancelled.", url_for("pages.users"))


@blueprint.route("/users/<name>/unban", methods=["POST"])
def unban(name: str) -> ResponseReturnValue:
    return _act(lambda s: admin.unban(s, name), f"@{name} is no longer banned.", url_for("pages.users"))


@blueprint.route("/users/<name>/priority", methods=["POST"])
def priority(name: str) -> ResponseReturnValue:
    raw = request.form.get("priority", "").strip()
    if not (raw.isascii() and raw.isdigit()) or not 0 <= int(raw) <= 100:
        flash(f"Priority must be a whole number from 0 to 100, got: {raw!r}", "error")
        return redirect(local(request.form.get("next"), url_for("pages.users")))
    value = int(raw)
    return _act(lambda s: admin.set_priority(s, name, value), f"@{name} now has priority {value}.",
                url_for("pages.users"))
