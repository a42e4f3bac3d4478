"""The X client: everything Forger says to and hears from the X API v2, behind one small class.

Every call goes through one place (``_call``), signed with OAuth 1.0a by tweepy's handler, so
that X's answers are read the same way everywhere: the ``x-rate-limit-*`` headers are noted per
endpoint, and X's problem objects become the bot's own errors:

- 429 with the ``usage-capped`` problem type: ``XUsageCapped``; that kind of call (reads or
  writes) is paused until the cap's period ends (but for one call an hour, in case the admin
  raised the cap) and the admin is told, once;
- 429 otherwise: ``XRateLimited`` with the window's reset (a minute from now when X sent no
  ``x-rate-limit-reset``); the endpoint is paused until then;
- 401, and a 403 about the app's setup: ``XAuthError``, a configuration error stated plainly;
  other 403s: ``XTweetGone`` (a tweet deleted or not visible), ``XDuplicate`` (a text the bot
  posted a while ago) or ``XForbidden`` (X refused this one action for a reason of its own);
- 5xx, timeouts and unreachable: ``XError`` with ``transient`` set.

A paused call is refused here, without a request, so nothing spins against X. The client never
sleeps: when to come back is the caller's decision (``bot.retry``). Time comes from ``clock``.

JSON calls go through tweepy's ``Client`` (its ``request``, since its typed methods know neither
``made_with_ai`` nor ``post.fields``); its hard-coded host is rewritten by the session under it,
the seam that points the bot at the sandbox X. tweepy has no v2 media upload, so multipart calls
are sent on a plain session with the same OAuth 1.0a signature. ``wait_on_rate_limit`` stays off.
When a ``ledger`` is given, each call is asked of it first (budget, windows shared by all the
bot's processes) and recorded after. X renamed tweets to posts in its API (``bot.x.dialect``): the
client speaks the current names first and switches to the others on a 400 that blames a name of the
ones it spoke, for reads and the one-shot upload; the choice is kept in the database.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests
import tweepy

from bot.x.settings import XCredentials
from bot.platform import MentionBatch, Post
from bot.x.dialect import CURRENT, Dialect, DialectMemory, other
from bot.x.errors import (
    XAuthError,
    XDuplicate,
    XError,
    XForbidden,
    XMediaPending,
    XRateLimited,
    XTweetGone,
    XUsageCapped,
)
from bot.x.parsing import parse_tweets
from storage.ledger import Need

if TYPE_CHECKING:
    from bot.x.ledger import Ledger

log = logging.getLogger(__name__)

ME = "GET /2/users/me"
MENTIONS = "GET /2/users/:id/mentions"
USER_TWEETS = "GET /2/users/:id/tweets"
TWEET = "GET /2/tweets/:id"
CREATE_TWEET = "POST /2/tweets"
UPLOAD = "POST /2/media/upload"
UPLOAD_INIT = "POST /2/media/upload/initialize"
UPLOAD_APPEND = "POST /2/media/upload/:id/append"
UPLOAD_FINALIZE = "POST /2/media/upload/:id/finalize"
UPLOAD_STATUS = "GET /2/media/upload"
MEDIA_METADATA = "POST /2/media/metadata"

MEDIA_FIELDS = ("media_key", "type", "url", "preview_image_url", "width", "height")
USER_FIELDS = ("username", "name")

MENTION_REACH = 800  # X serves only the newest 800 mentions: older ones cannot be paged to
MISSING_RESET_WAIT_S = 60.0  # a 429 without x-rate-limit-reset: come back after this, never at once
CAP_RECHECK_S = 3600.0  # a spent usage cap: X is asked again after this, in case the admin raised it
CHUNK_RESENDS = 2  # a failed chunk is sent again at once this many times (X: chunks retry alone)
ONE_SHOT_MAX_BYTES = 1024 * 1024  # larger uploads go chunked
_USAGE_CAPPED = "/2/problems/usage-capped"  # under api.twitter.com or api.x.com
_GONE = re.compile(r"deleted or not visible|not found|does not exist", re.IGNORECASE)
_DUPLICATE = re.compile(r"duplicate", re.IGNORECASE)
# 403s about the app's setup: the X problem types, and the words of their details.
_CONFIGURATION_PROBLEMS = frozenset({"client-forbidden", "oauth1-permissions", "unsupported-authentication"})
_CONFIGURATION = re.compile(r"permission|permitted|authenticat|oauth|project|access level|tier", re.IGNORECASE)


@dataclass(frozen=True)
class RateLimit:
    """One endpoint's window, from the ``x-rate-limit-*`` headers of its last answer."""

    limit: int
    remaining: int
    reset_at: float  # epoch seconds


def call_kind(route: str) -> str:
    """"read" or "write": what a usage cap stops (X caps reads of posts and writes apart)."""
    return "read" if route.startswith("GET ") else "write"


def period_end(period: str, now: float) -> float:
    """When a usage cap of ``period`` ("Daily", "Monthly") runs out: the next UTC day or month."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period.lower() == "daily":
        return (day + timedelta(days=1)).timestamp()
    if period.lower() == "monthly":
        first = day.replace(day=1)
        return first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1).timestamp()
    return now + 86_400.0  # a period X has not named before: look again in a day


TWEEPY_HOST = "https://api.twitter.com"


class _HostSession(requests.Session):
    """A requests session that sends tweepy's calls to ``base_url`` instead of api.twitter.com."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        super().__init__()
        self.base_url = base_url
        self.timeout_s = timeout_s

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if isinstance(url, bytes):
            url = url.decode()
        if url.startswith(TWEEPY_HOST):
            url = self.base_url + url[len(TWEEPY_HOST):]
        kwargs.setdefault("timeout", self.timeout_s)
        return super().request(method, url, *args, **kwargs)


def _log_alert(message: str) -> None:
    log.error("ADMIN: %s", message)


class XClient:
    """The bot's account on X: read mentions and tweets, upload images, describe them, reply."""


    def __init__(
        self,
        credentials: XCredentials,
        *,
        base_url: str,
        timeout_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        upload_chunk_bytes: int = ONE_SHOT_MAX_BYTES,
        made_with_ai: bool = True,
        alert: Callable[[str], None] = _log_alert,
        mention_reach: int = MENTION_REACH,
        ledger: Ledger | None = None,
        dialects: DialectMemory | None = None,
        dialect: Dialect | None = None,
    ) -> None:
        """``alert`` is how the admin is told of usage caps; ``made_with_ai`` asks X to label posts.

        ``dialect`` is the names to speak first (by default those ``dialects`` kept, else X's
        current ones); ``dialects`` keeps a switch for the bot's other processes and restarts.
        """
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.upload_chunk_bytes = upload_chunk_bytes
        self.mention_reach = mention_reach
        self._clock = clock
        self._alert = alert
        self._made_with_ai = made_with_ai
        self._auth = tweepy.OAuth1UserHandler(
            credentials.api_key, credentials.api_secret, credentials.access_token, credentials.access_token_secret
        ).apply_auth()
        self._session = requests.Session()  # multipart uploads, which tweepy cannot send
        self._client = tweepy.Client(
            bearer_token=credentials.bearer_token,
            consumer_key=credentials.api_key,
            consumer_secret=credentials.api_secret,
            access_token=credentials.access_token,
            access_token_secret=credentials.access_token_secret,
            return_type=requests.Response,
            wait_on_rate_limit=False,
        )
        self._client.session = _HostSession(self.base_url, timeout_s)
        self.ledger = ledger
        self._dialects = dialects
        self._dialect = dialect
        self.rate_limits: dict[str, RateLimit] = {}  # by endpoint, as X last reported it
        self.paused: dict[str, XUsageCapped] = {}  # by kind of call, while a usage cap lasts
        self._capped_periods: set[tuple[str, float]] = set()  # (kind, period end) the admin was told of
        self._uploaded: dict[str, tuple[str, float]] = {}  # sha256 -> (media id, usable until)
        self._processing: dict[str, str] = {}  # sha256 -> media id X is still processing
        self._me: tuple[str, str] | None = None

    # -- dialect -------------------------------------------------------------------------------

    @property
    def dialect(self) -> Dialect:
        """The names X takes, as far as the bot knows: kept ones, else X's current ones."""
        if self._dialect is None:
            self._dialect = (self._dialects.load() if self._dialects is not None else None) or CURRENT
        return self._dialect

    def _in_either_dialect(self, route: str, call: Callable[[Dialect], dict[str, Any]]) -> dict[str, Any]:
        """``call`` in the bot's dialect; if X refuses one of its names (a 400 blaming it), in the other,
        which is then kept."""
        spoken = self.dialect
        try:
            return call(spoken)
        except XError as exc:
            if exc.status != 400 or not spoken.refused(exc.parameters, exc.values):
                raise
            switched = other(spoken)
            log.warning("%s: X refused the %s names (%s); speaking its %s names from now on",
                        route, spoken.name, exc, switched.name)
        try:
            body = call(switched)
        except XError as exc:
            if exc.status == 400 and switched.refused(exc.parameters, exc.values):
                raise XError(f"{route}: X refused both the {spoken.name} and the {switched.name} names ({exc})",
                             status=400) from exc
            raise
        self._dialect = switched
        if self._dialects is not None:
            self._dialects.save(switched)
        return body

    # -- reading -------------------------------------------------------------------------------

    def me(self) -> tuple[str, str]:
        """The bot's (user id, username); asked once, then remembered."""
        if self._me is None:
            data = self._call(ME, "/2/users/me")["data"]
            self._me = (str(data["id"]), str(data["username"]))
        return self._me

    def mentions(
        self, user_id: str, *, since_id: str | None, start_time: float | None = None, page_size: int = 100
    ) -> MentionBatch:
        """Every reachable mention of ``user_id`` newer than ``since_id`` (and ``start_time``).

        Follows ``meta.next_token`` to the end; a tweet served twice is kept once.
        """
        params: dict[str, Any] = {"max_results": page_size}
        if since_id:
            params["since_id"] = since_id
        if start_time is not None:
            params["start_time"] = datetime.fromtimestamp(start_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        found = self._walk(MENTIONS, f"/2/users/{user_id}/mentions", params, need=Need.NEW_WORK)
        return MentionBatch(found, maybe_gap=len(found) >= self.mention_reach)

    def tweet(self, tweet_id: str) -> Post | None:
        """The tweet ``tweet_id`` with its media, or None if it is deleted or not visible."""
        body = self._read(TWEET, f"/2/tweets/{tweet_id}", {}, need=Need.NEW_WORK)
        if "data" not in body:
            return None  # X answers 200 with a resource-not-found error
        return parse_tweets(body)[0]

    def replies_by_me(self, tweet_id: str) -> list[Post]:
        """The bot's own replies to ``tweet_id`` (they are newer than it, so they are reachable)."""
        bot_id, _ = self.me()
        mine = self._walk(USER_TWEETS, f"/2/users/{bot_id}/tweets", {"since_id": tweet_id, "max_results": 100})
        return [t for t in mine if t.in_reply_to_id == tweet_id]

    def _walk(self, route: str, path: str, params: dict[str, Any], *, need: Need = Need.OWED) -> list[Post]:
        """All pages of a timeline, oldest first, each tweet once."""
        found: dict[str, Post] = {}
        token: str | None = None
        while True:
            body = self._read(route, path, {**params, "pagination_token": token} if token else params, need=need)
            found.update((t.id, t) for t in parse_tweets(body))
            token = body.get("meta", {}).get("next_token")
            if not token:
                return sorted(found.values(), key=lambda t: int(t.id))

    def _read(self, route: str, path: str, params: dict[str, Any], *, need: Need = Need.OWED) -> dict[str, Any]:
        """A GET of tweets with the bot's fields and expansions, in the dialect X takes."""

        def read(dialect: Dialect) -> dict[str, Any]:
            fields = {
                **params,
                "expansions": ",".join(dialect.expansions),
                "media.fields": ",".join(MEDIA_FIELDS),
                "user.fields": ",".join(USER_FIELDS),
                dialect.fields_param: ",".join(dialect.post_fields),
            }
            return self._call(route, path, need=need, params=fields)

        return self._in_either_dialect(route, read)

    # -- writing -------------------------------------------------------------------------------

    def upload_image(self, data: bytes, *, content_type: str = "image/jpeg") -> str:
        """Upload one image and return its media id, ready to attach.

        Up to ``upload_chunk_bytes`` it is one request; larger images take the chunked
        initialize/append/finalize flow, each chunk sent again at once if X fails it. The same
        bytes are not uploaded twice while X keeps the first upload. If X is still processing
        it, ``XMediaPending`` says when to ask again; the next call with the same bytes asks
        for its status instead of uploading again.
        """
        digest = hashlib.sha256(data).hexdigest()
        uploaded = self._uploaded.get(digest)
        if uploaded and uploaded[1] > self._clock():
            return uploaded[0]
        if digest in self._processing:
            params = {"command": "STATUS", "media_id": self._processing[digest]}
            info = self._call(UPLOAD_STATUS, "/2/media/upload", params=params)["data"]
        elif len(data) <= self.upload_chunk_bytes:

            def upload(dialect: Dialect) -> dict[str, Any]:
                form = {"media_category": "tweet_image"}
                if dialect.upload_sends_media_type:
                    form["media_type"] = content_type
                media = {"media": (f"forger.{content_type.split('/')[-1]}", data, content_type)}
                return self._call(UPLOAD, "/2/media/upload", files=media, data=form)

            info = self._in_either_dialect(UPLOAD, upload)["data"]
        else:
            info = self._upload_chunked(data, content_type)
        return self._settle(digest, info)

    def _upload_chunked(self, data: bytes, content_type: str) -> dict[str, Any]:
        started = {"media_type": content_type, "total_bytes": len(data), "media_category": "tweet_image"}
        media_id = str(self._call(UPLOAD_INIT, "/2/media/upload/initialize", json=started)["data"]["id"])
        for index, start in enumerate(range(0, len(data), self.upload_chunk_bytes)):
            chunk = data[start : start + self.upload_chunk_bytes]
            for resend in range(CHUNK_RESENDS + 1):
                try:
                    self._call(
                        UPLOAD_APPEND,
                        f"/2/media/upload/{media_id}/append",
                        files={"media": ("chunk", chunk, "application/octet-stream")},
                        data={"segment_index": str(index)},
                    )
                    break
                except (XRateLimited, XUsageCapped):
                    raise  # waiting is the caller's to schedule, not a chunk's to retry
                except XError as exc:
                    if not exc.transient or resend == CHUNK_RESENDS:
                        raise
                    log.warning("upload %s: chunk %d failed (%s); sending it again", media_id, index, exc)
        return dict(self._call(UPLOAD_FINALIZE, f"/2/media/upload/{media_id}/finalize")["data"])

    def _settle(self, digest: str, info: dict[str, Any]) -> str:
        """Remember an upload by its bytes; ready, or still processing (XMediaPending), or failed."""
        media_id = str(info["id"])
        processing = info.get("processing_info") or {}
        state = processing.get("state", "succeeded")
        if state in ("pending", "in_progress"):
            self._processing[digest] = media_id
            check_at = self._clock() + float(processing.get("check_after_secs", 1))
            raise XMediaPending(f"X is still processing media {media_id}", media_id=media_id, check_at=check_at)
        self._processing.pop(digest, None)
        if state != "succeeded":
            reason = (processing.get("error") or {}).get("message", state)
            raise XError(f"X could not process media {media_id}: {reason}", status=400)
        # Keep the id a minute less than X keeps the media, so it never expires in our hands.
        self._uploaded[digest] = (media_id, self._clock() + float(info.get("expires_after_secs", 0)) - 60)
        return media_id

    def describe_media(self, media_id: str, alt_text: str) -> None:
        """Give an uploaded image its alt text (what screen readers say), before it is posted."""
        body = {"id": media_id, "metadata": {"alt_text": {"text": alt_text}}}
        self._call(MEDIA_METADATA, "/2/media/metadata", json=body)

    def reply(
        self, in_reply_to: str, text: str, *, media_ids: tuple[str, ...] = (), made_with_ai: bool = False,
        need: Need = Need.OWED,
    ) -> str:
        """Post ``text`` (and media) as a reply to tweet ``in_reply_to``; returns the new tweet's id.

        ``made_with_ai`` asks X to label the post as AI-made; if X refuses the field, the post
        goes out without it and later ones do not ask.
        """
        body: dict[str, Any] = {"text": text, "reply": {"in_reply_to_tweet_id": in_reply_to}}
        if media_ids:
            body["media"] = {"media_ids": list(media_ids)}
        if made_with_ai and self._made_with_ai:
            body["made_with_ai"] = True
        try:
            data = self._call(CREATE_TWEET, "/2/tweets", json=body, about=in_reply_to, need=need)["data"]
        except XError as exc:
            if exc.parameters != ("made_with_ai",):
                raise
            log.warning("X does not take made_with_ai here; posting without the label from now on")
            self._made_with_ai = False
            return self.reply(in_reply_to, text, media_ids=media_ids, need=need)
        return str(data["id"])

    # -- state ---------------------------------------------------------------------------------

    def now(self) -> float:
        """The client's clock (epoch seconds)."""
        return self._clock()

    def blocked_until(self, kind: str) -> float | None:
        """Until when calls of ``kind`` ("read", "write") are refused here (a cap, a spent window)."""
        now = self._clock()
        times = [cap.until for cap in self.paused.values() if cap.kind == kind and cap.until > now]
        times += [
            w.reset_at for route, w in self.rate_limits.items()
            if call_kind(route) == kind and w.remaining <= 0 and w.reset_at > now
        ]
        return max(times, default=None)

    # -- plumbing ------------------------------------------------------------------------------

    def _call(
        self, route: str, path: str, *, about: str | None = None, need: Need = Need.OWED, **kwargs: Any
    ) -> dict[str, Any]:
        """One request to X: refused here if ``route`` is paused (or the ledger says no), else
        sent, recorded, checked, parsed.

        ``about`` is the tweet the call concerns, named in ``XTweetGone``; ``need`` is what the
        budget weighs (optional posts stop first, new work next, owed replies last).
        """
        self._refuse_if_paused(route)
        if self.ledger is not None:
            self.ledger.permit(route, need)
        method = route.partition(" ")[0]
        try:
            response = self._send(method, path, **kwargs)
        except requests.Timeout as exc:
            self._record(route, None, {}, 0)
            raise XError(f"{route}: X did not answer within {self.timeout_s:g} s") from exc
        except requests.RequestException as exc:
            self._record(route, None, {}, 0)
            raise XError(f"{route}: X could not be reached: {exc}") from exc
        self._note_rate_limit(route, response)
        if response.status_code >= 400:
            self._record(route, response.status_code, response.headers, 0)
            raise self._error(route, response, about)
        body: Any = {}
        if response.content:
            try:
                body = response.json()
            except ValueError as exc:
                raise XError(f"{route}: X answered with something that is not JSON", status=response.status_code) from exc
        if not isinstance(body, dict):
            raise XError(f"{route}: unexpected answer {body!r}", status=response.status_code)
        data = body.get("data")
        served = [
            (str(p["id"]), str(p["author_id"]) if "author_id" in p else None)
            for p in (data if isinstance(data, list) else [data] if isinstance(data, dict) else [])
            if isinstance(p, dict) and "id" in p
        ] if route.startswith("GET ") else []
        self._record(route, response.status_code, response.headers,
                     len(data) if isinstance(data, list) else int(bool(data)), served)
        return body

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """JSON calls through tweepy's Client; multipart ones (media) on the plain session."""
        if "files" in kwargs:
            return self._session.request(method, self.base_url + path, auth=self._auth, timeout=self.timeout_s, **kwargs)
        try:
            response: requests.Response = self._client.request(
                method, path, params=kwargs.get("params"), json=kwargs.get("json"), user_auth=True
            )
        except tweepy.HTTPException as exc:  # tweepy raises on 4xx/5xx; X's problem is read below
            response = exc.response
        return response

    def _record(
        self, route: str, status: int | None, headers: Any, returned: int, served: list[tuple[str, str | None]] | None = None
    ) -> None:
        if self.ledger is not None:
            self.ledger.record(route, status=status, headers=headers, returned=returned, served=served or ())

    def _refuse_if_paused(self, route: str) -> None:
        now = self._clock()
        kind = call_kind(route)
        cap = self.paused.get(kind)
        if cap is not None:
            if now < cap.until:
                raise XUsageCapped(str(cap), kind=cap.kind, period=cap.period, until=cap.until)
            del self.paused[kind]
            log.warning("asking X again whether its usage cap for %ss is still spent", kind)
        window = self.rate_limits.get(route)
        if window is not None and window.remaining <= 0 and now < window.reset_at:
            wait = math.ceil(window.reset_at - now)
            raise XRateLimited(f"{route}: rate limit reached, resets in {wait} s (not asked again)", reset_at=window.reset_at)

    def _note_rate_limit(self, route: str, response: requests.Response) -> None:
        headers = response.headers
        try:
            self.rate_limits[route] = RateLimit(
                limit=int(headers["x-rate-limit-limit"]),
                remaining=int(headers["x-rate-limit-remaining"]),
                reset_at=int(headers["x-rate-limit-reset"]),
            )
        except (KeyError, ValueError):
            pass  # not every answer carries the headers; keep what we knew

    def _error(self, route: str, response: requests.Response, about: str | None) -> XError:
        """The bot's error for an X error answer (see the module doc)."""
        status = response.status_code
        problem = _problem(response)
        reason = _reason(problem, response)
        now = self._clock()
        if status == 429 and (str(problem.get("type", "")).endswith(_USAGE_CAPPED) or problem.get("title") == "UsageCapExceeded"):
            kind, period = call_kind(route), str(problem.get("period") or "Monthly")
            ends_at = period_end(period, now)
            # Asked again before the period ends: the admin may raise the cap in the meantime.
            until = min(ends_at, now + CAP_RECHECK_S)
            ends = datetime.fromtimestamp(ends_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
            capped = XUsageCapped(
                f"{route}: X's {period.lower()} usage cap is spent ({reason}) until {ends}; no {kind} calls "
                f"to X until then, but for one every {CAP_RECHECK_S / 60:.0f} minutes to see whether it was "
                "raised. Raise the cap in the X developer console or wait for the new period.",
                kind=kind, period=period, until=until,
            )
            if (kind, ends_at) not in self._capped_periods:  # told once per cap, not at each check
                self._capped_periods.add((kind, ends_at))
                self._alert(str(capped))
            self.paused[kind] = capped
            if self.ledger is not None:  # so the bot's other processes stop asking too
                self.ledger.cap(route, until=until)
            return capped
        if status == 429:
            window = self.rate_limits.get(route)
            reset = response.headers.get("x-rate-limit-reset")
            reset_at = float(reset) if reset and reset.isdigit() else now + MISSING_RESET_WAIT_S
            self.rate_limits[route] = RateLimit(window.limit if window else 0, 0, reset_at)
            said = "" if reset else " (X sent no reset time)"
            return XRateLimited(f"{route}: rate limit reached, resets in {math.ceil(reset_at - now)} s{said}", reset_at=reset_at)
        if status == 403 and about is not None and _GONE.search(reason):
            return XTweetGone(f"{route}: tweet {about} is gone ({reason})", tweet_id=about)
        if status == 403 and _DUPLICATE.search(reason):
            return XDuplicate(f"{route}: X refused it as a duplicate of a recent post ({reason})", status=status)
        if status == 403 and not _about_configuration(problem, reason):
            return XForbidden(f"{route}: X refused this action ({reason})", status=status)
        if status in (401, 403):
            return XAuthError(
                f"{route}: X refused the bot's credentials or this action ({status}: {reason}); check "
                "X_API_KEY, X_API_SECRET, X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET, and that the app has "
                "Read and Write permission (regenerate the access token after changing it)",
                status=status,
            )
        blamed, values = _blamed(problem)
        return XError(f"{route}: {status} {reason}", status=status, parameters=blamed, values=values)


def _about_configuration(problem: dict[str, Any], reason: str) -> bool:
    """Whether a 403 blames the app's setup (its permissions, project, tier), not this one action.

    A bare "Forbidden" says nothing else, and is what X answers an app whose tier lacks the endpoint.
    """
    kind = str(problem.get("type", "")).rsplit("/", 1)[-1]
    return kind in _CONFIGURATION_PROBLEMS or bool(_CONFIGURATION.search(reason)) or reason.strip() == "Forbidden"


def _blamed(problem: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The parameters an invalid-request answer blames, and their values: from each error's
    ``parameters`` (``{name: [values]}``), or the problem's own ``parameter`` and ``value``."""
    names: list[str] = []
    values: list[str] = []
    errors = problem.get("errors")
    for error in errors if isinstance(errors, list) else []:
        blamed = error.get("parameters") if isinstance(error, dict) else None
        for name, given in blamed.items() if isinstance(blamed, dict) else ():
            names.append(str(name))
            values += [str(v) for v in given] if isinstance(given, list) else [str(given)]
    if problem.get("parameter"):
        names.append(str(problem["parameter"]))
        if problem.get("value") is not None:
            values.append(str(problem["value"]))
    return tuple(dict.fromkeys(names)), tuple(dict.fromkeys(values))


def _problem(response: requests.Response) -> dict[str, Any]:
    """X's problem object of an error answer, or {} when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reason(problem: dict[str, Any], response: requests.Response) -> str:
    """X's own words for an error: the first error's message, the problem's detail or title."""
    errors = problem.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict) and errors[0].get("message"):
        return str(errors[0]["message"])
    for key in ("detail", "title"):
        if problem.get(key):
            return str(problem[key])
    return response.reason or "error"
