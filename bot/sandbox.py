"""The sandbox X: the project's own emulator of the slice of the X API v2 that Forger uses.

It is a real HTTP server on loopback (``http.server`` in a daemon thread), so the production
gateway (tweepy's ``Client`` with its host rewritten, plus a hand-written media upload) runs
against it unchanged, and the demo and the tests never need real X credentials.

It speaks X's JSON shapes, as docs.x.com shows them:

- ``GET /2/users/me`` and ``GET /2/users/:id/mentions`` (fields, expansions, ``includes``,
  ``meta`` and ``next_token`` pagination);
- ``POST /2/media/upload`` (one-shot multipart upload) and ``POST /2/tweets`` (text, reply, media);
- the photo bytes behind each media ``url``, at ``/media/<media_key>.<ext>``, without auth;
- X's problem objects for errors, and ``x-rate-limit-*`` headers counted per endpoint and window.

It rejects, in X's own ``invalid-request`` format, the fields, expansions and parameters it does
not render, so a gateway that asks for more than the sandbox knows fails loudly, not silently.

The test and demo side drives it in-process: ``post`` tweets as any user, read what the bot
posted with ``tweets_by`` and ``replies_to``, look at ``media`` bytes, ``delete`` tweets.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType, TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

from PIL import Image

# Per-user requests per 15-minute window. Mentions and tweets: the table at
# docs.x.com/x-api/fundamentals/rate-limits; users/me: the users lookup introduction. X publishes
# no such per-user number for the one-shot media upload: 500 is a stand-in.
DEFAULT_RATE_LIMITS: Mapping[str, int] = MappingProxyType(
    {
        "GET /2/users/me": 75,
        "GET /2/users/:id/mentions": 300,
        "POST /2/tweets": 100,
        "POST /2/media/upload": 500,
    }
)

FIRST_ID = 1_860_000_000_000_000_000  # where the sandbox's snowflake-like ids start counting
MAX_TWEET_CHARS = 280
MAX_MEDIA_PER_TWEET = 4
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # X's limit for an uploaded image
MEDIA_EXPIRES_AFTER_S = 86_400

_INVALID_REQUEST = "https://api.twitter.com/2/problems/invalid-request"
_RESOURCE_NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"

# What the sandbox renders; X accepts more, the sandbox refuses the rest (see the module doc).
_EXPANSIONS = frozenset({"attachments.media_keys", "author_id", "referenced_tweets.id"})
_TWEET_FIELDS = frozenset(
    {
        "attachments",
        "author_id",
        "conversation_id",
        "created_at",
        "edit_history_tweet_ids",
        "entities",
        "id",
        "in_reply_to_user_id",
        "referenced_tweets",
        "text",
    }
)
_MEDIA_FIELDS = frozenset({"height", "media_key", "preview_image_url", "type", "url", "width"})
_USER_FIELDS = frozenset({"created_at", "id", "name", "username"})

_UPLOAD_CATEGORIES = frozenset({"tweet_image"})
_UPLOAD_MEDIA_TYPES = frozenset({"image/jpeg", "image/bmp", "image/png", "image/webp", "image/pjpeg", "image/tiff"})
_IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")  # what X takes as images

# An @handle: X usernames are 1-15 of [A-Za-z0-9_], not glued to a word on either side.
_MENTION = re.compile(r"(?<![A-Za-z0-9_])@([A-Za-z0-9_]{1,15})(?![A-Za-z0-9_])")
_TWEET_ID = re.compile(r"[0-9]{1,19}")
_PAGE_TOKEN = re.compile(r"[0-9a-f]{1,16}")
_MEDIA_PATH = re.compile(r"/media/([0-9]+_[0-9]+)\.[a-z]+")

Json = dict[str, Any]


@dataclass(frozen=True)
class SandboxMedia:
    """An image on a sandbox tweet: its encoded bytes and how X describes it."""

    media_key: str  # "3_<id>" for a photo, "16_<id>" for a GIF
    type: str  # "photo" or "animated_gif"
    data: bytes = field(repr=False)
    content_type: str
    width: int
    height: int
    url: str  # served by the sandbox, no auth needed

    @property
    def id(self) -> str:
        """The media id that ``POST /2/tweets`` takes: the number in the media key."""
        return self.media_key.partition("_")[2]


@dataclass(frozen=True)
class SandboxTweet:
    """A tweet stored by the sandbox."""

    id: str
    text: str
    author_id: str
    author_username: str
    created_at: datetime
    in_reply_to_tweet_id: str | None
    conversation_id: str
    media_keys: tuple[str, ...]


@dataclass(frozen=True)
class _User:
    id: str
    username: str
    name: str
    created_at: datetime


class _Problem(Exception):
    """An X error answer: raised by an endpoint, written out by the dispatcher."""

    def __init__(self, status: HTTPStatus, body: Json) -> None:
        super().__init__(f"{int(status)} {body.get('detail')}")
        self.status = status
        self.body = body


def _http_problem(status: HTTPStatus, detail: str | None = None) -> _Problem:
    """A plain HTTP problem (type about:blank), the shape X answers 401, 403 and 429 with."""
    body = {"title": status.phrase, "detail": detail or status.phrase, "type": "about:blank", "status": int(status)}
    return _Problem(status, body)


def _invalid_request(parameter: str, value: object, message: str) -> _Problem:
    """X's 400 for a bad parameter: the invalid-request problem, its one error naming the parameter."""
    values = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    body = {
        "errors": [{"parameters": {parameter: values}, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": _INVALID_REQUEST,
        "status": 400,
    }
    return _Problem(HTTPStatus.BAD_REQUEST, body)


def _not_one_of(parameter: str, value: str, allowed: Collection[str], kind: str = "query parameter value") -> _Problem:
    """X's 400 for a value outside an enumeration, listing the allowed ones."""
    message = f"The `{parameter}` {kind} [{value}] is not one of [{','.join(sorted(allowed))}]"
    return _invalid_request(parameter, value, message)


@dataclass(frozen=True)
class _Request:
    args: tuple[str, ...]  # the path's :id parts
    query: dict[str, str]
    content_type: str
    body: bytes


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @classmethod
    def of_json(cls, status: int, payload: Json, headers: Mapping[str, str] = MappingProxyType({})) -> _Reply:
        return cls(status, {"Content-Type": "application/json; charset=utf-8", **headers}, json.dumps(payload).encode())


_Handler = Callable[[_Request], tuple[HTTPStatus, Json]]


@dataclass(frozen=True)
class _Route:
    method: str
    template: str  # as X's docs write it, e.g. "/2/users/:id/mentions"
    handler: _Handler

    @property
    def key(self) -> str:
        """The endpoint's name in ``rate_limits``, e.g. "GET /2/users/:id/mentions"."""
        return f"{self.method} {self.template}"

    def match(self, method: str, path: str) -> tuple[str, ...] | None:
        pattern = re.sub(r":\w+", "([0-9]{1,19})", self.template)
        found = re.fullmatch(pattern, path)
        return found.groups() if found and method == self.method else None


class SandboxX:
    """An emulated X API v2 on loopback, with a Python control API for the demo and the tests.

    Any credentials are accepted; every POST acts as the bot user. One lock guards all state, so
    the HTTP threads and the caller's thread may use it at once.
    """

    def __init__(
        self,
        bot_username: str = "forgerbot",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limits: Mapping[str, int] | None = None,
        window_s: int = 900,
    ) -> None:
        """Set up an empty X holding only the bot user; ``start()`` opens the port.

        ``rate_limits`` overrides per endpoint key (see ``DEFAULT_RATE_LIMITS``), counted per
        window of ``window_s`` seconds.
        """
        overrides = dict(rate_limits or {})
        for key, limit in overrides.items():
            if key not in DEFAULT_RATE_LIMITS:
                raise ValueError(f"rate_limits has unknown endpoint {key!r}; known: {', '.join(DEFAULT_RATE_LIMITS)}")
            if limit < 0:
                raise ValueError(f"rate_limits[{key!r}] must be >= 0, got: {limit}")
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got: {window_s}")
        self._address = (host, port)
        self._limits = {**DEFAULT_RATE_LIMITS, **overrides}
        self._window_s = window_s
        self._lock = threading.Lock()  # guards everything below, for the HTTP threads and the caller
        self._ids = itertools.count(FIRST_ID)
        self._users: dict[str, _User] = {}  # by id
        self._user_ids: dict[str, str] = {}  # lower-cased username -> id
        self._tweets: dict[str, SandboxTweet] = {}  # by id, oldest first
        self._deleted: set[str] = set()
        self._media: dict[str, SandboxMedia] = {}  # by media key
        self._windows: dict[str, tuple[float, int]] = {}  # endpoint key -> (reset epoch, requests)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self._routes = (
            _Route("GET", "/2/users/me", self._get_me),
            _Route("GET", "/2/users/:id/mentions", self._get_mentions),
            _Route("POST", "/2/media/upload", self._upload_media),
            _Route("POST", "/2/tweets", self._create_tweet),
        )
        self.requests_log: list[tuple[str, str]] = []  # (method, path without query), in order
        self.bot_user_id = self.add_user(bot_username)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Where the server listens, e.g. "http://127.0.0.1:54321"; only while started."""
        if self._base_url is None:
            raise RuntimeError("the sandbox X is not started: call start() or use it in a with block")
        return self._base_url

    def start(self) -> None:
        """Open the port and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("the sandbox X is already started")
        self._server = _Server(self._address, self)
        self._base_url = f"http://{self._address[0]}:{self._server.server_port}"
        # A short poll interval keeps stop() quick: shutdown() waits for the loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="sandbox-x", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the port; stored tweets stay readable."""
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = self._base_url = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- control API ---------------------------------------------------------------------------

    def add_user(self, username: str, name: str | None = None) -> str:
        """Create user ``username`` (once; later calls return the same id) and return its id."""
        if not re.fullmatch(r"[A-Za-z0-9_]{1,15}", username):
            raise ValueError(f"username must be 1-15 letters, digits or underscores, got: {username!r}")
        with self._lock:
            user_id = self._user_ids.get(username.lower())
            if user_id is None:
                user_id = self._next_id()
                self._users[user_id] = _User(user_id, username, name or username.title(), _now())
                self._user_ids[username.lower()] = user_id
            return user_id

    def post(self, author: str, text: str, images: Sequence[bytes] = (), in_reply_to: str | None = None) -> str:
        """Post a tweet as ``author`` (added if new), with up to 4 encoded images; returns its id.

        A tweet whose text holds "@<bot_username>" mentions the bot. Images need the server
        started, since each one's url points at it.
        """
        if len(images) > MAX_MEDIA_PER_TWEET:
            raise ValueError(f"a tweet holds at most {MAX_MEDIA_PER_TWEET} images, got: {len(images)}")
        decoded = [(data, *_decode_image(data)) for data in images]
        author_id = self.add_user(author)
        with self._lock:
            if in_reply_to is not None and not self._is_live(in_reply_to):
                raise LookupError(f"the sandbox X has no tweet {in_reply_to} to reply to (or it was deleted)")
            media = [self._new_media(*image) for image in decoded]
            return self._new_tweet(author_id, text, [m.media_key for m in media], in_reply_to).id

    def tweets_by(self, username: str) -> list[SandboxTweet]:
        """The tweets ``username`` has posted and not deleted, oldest first."""
        with self._lock:
            user_id = self._user_ids.get(username.lower())
            if user_id is None:
                raise LookupError(f"the sandbox X has no user @{username}")
            return [t for t in self._live_tweets() if t.author_id == user_id]

    def replies_to(self, tweet_id: str) -> list[SandboxTweet]:
        """The replies to tweet ``tweet_id`` not deleted, oldest first."""
        with self._lock:
            if tweet_id not in self._tweets:
                raise LookupError(f"the sandbox X has no tweet {tweet_id}")
            return [t for t in self._live_tweets() if t.in_reply_to_tweet_id == tweet_id]

    def media(self, media_key: str) -> SandboxMedia:
        """The media object ``media_key``, with its bytes."""
        with self._lock:
            if media_key not in self._media:
                raise LookupError(f"the sandbox X has no media {media_key}")
            return self._media[media_key]

    def delete(self, tweet_id: str) -> None:
        """Delete tweet ``tweet_id``: it leaves every listing and can no longer be replied to."""
        with self._lock:
            if tweet_id not in self._tweets:
                raise LookupError(f"the sandbox X has no tweet {tweet_id}")
            self._deleted.add(tweet_id)

    # -- state (callers hold the lock) ---------------------------------------------------------

    def _next_id(self) -> str:
        return str(next(self._ids))

    def _live_tweets(self) -> list[SandboxTweet]:
        return [t for t in self._tweets.values() if t.id not in self._deleted]

    def _is_live(self, tweet_id: str) -> bool:
        return tweet_id in self._tweets and tweet_id not in self._deleted

    def _new_media(self, data: bytes, image_format: str, width: int, height: int) -> SandboxMedia:
        gif = image_format == "GIF"
        key = f"{16 if gif else 3}_{self._next_id()}"
        extension = "jpg" if image_format == "JPEG" else image_format.lower()
        media = SandboxMedia(
            media_key=key,
            type="animated_gif" if gif else "photo",
            data=data,
            content_type=Image.MIME[image_format],
            width=width,
            height=height,
            url=f"{self.base_url}/media/{key}.{extension}",
        )
        self._media[key] = media
        return media

    def _new_tweet(self, author_id: str, text: str, media_keys: Sequence[str], in_reply_to: str | None) -> SandboxTweet:
        tweet_id = self._next_id()
        tweet = SandboxTweet(
            id=tweet_id,
            text=text,
            author_id=author_id,
            author_username=self._users[author_id].username,
            created_at=_now(),
            in_reply_to_tweet_id=in_reply_to,
            conversation_id=self._tweets[in_reply_to].conversation_id if in_reply_to else tweet_id,
            media_keys=tuple(media_keys),
        )
        self._tweets[tweet_id] = tweet
        return tweet

    # -- HTTP ----------------------------------------------------------------------------------

    def _respond(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> _Reply:
        """Answer one HTTP request (``headers`` keyed in lower case): route, check auth, count, run."""
        path, _, query = target.partition("?")
        with self._lock:
            self.requests_log.append((method, path))
        media_path = _MEDIA_PATH.fullmatch(path)
        if method == "GET" and media_path:
            return self._media_bytes(media_path[1])
        for route in self._routes:
            args = route.match(method, path)
            if args is not None:
                break
        else:
            unknown = _http_problem(HTTPStatus.NOT_FOUND, f"The sandbox X has no endpoint {method} {path}.")
            return _reply_problem(unknown)
        # X checks credentials before it counts a request against anyone's limit.
        if not headers.get("authorization", "").startswith(("Bearer ", "OAuth ")):
            return _reply_problem(_http_problem(HTTPStatus.UNAUTHORIZED))
        within_limit, rate_headers = self._count_request(route.key)
        if not within_limit:
            return _reply_problem(_http_problem(HTTPStatus.TOO_MANY_REQUESTS), rate_headers)
        request = _Request(args, dict(parse_qsl(query, keep_blank_values=True)), headers.get("content-type", ""), body)
        try:
            status, payload = route.handler(request)
        except _Problem as problem:
            return _reply_problem(problem, rate_headers)
        return _Reply.of_json(status, payload, rate_headers)

    def _count_request(self, key: str) -> tuple[bool, dict[str, str]]:
        """Spend one request of endpoint ``key``'s window: whether it fits, and the headers to send."""
        now = time.time()
        with self._lock:
            reset_at, used = self._windows.get(key, (0.0, 0))
            if now >= reset_at:
                reset_at, used = now + self._window_s, 0
            used += 1
            self._windows[key] = (reset_at, used)
        limit = self._limits[key]
        headers = {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(max(limit - used, 0)),
            "x-rate-limit-reset": str(math.ceil(reset_at)),
        }
        return used <= limit, headers

    def _media_bytes(self, media_key: str) -> _Reply:
        with self._lock:
            media = self._media.get(media_key)
        if media is None:
            return _reply_problem(_http_problem(HTTPStatus.NOT_FOUND, f"The sandbox X has no media {media_key}."))
        return _Reply(200, {"Content-Type": media.content_type}, media.data)

    def _get_me(self, request: _Request) -> tuple[HTTPStatus, Json]:
        _check_query(request.query, {"user.fields": _USER_FIELDS})
        with self._lock:
            bot = self._users[self.bot_user_id]
        return HTTPStatus.OK, {"data": _render_user(bot, _listed(request.query, "user.fields"))}

    def _get_mentions(self, request: _Request) -> tuple[HTTPStatus, Json]:
        query = request.query
        _check_query(
            query,
            {
                "expansions": _EXPANSIONS,
                "tweet.fields": _TWEET_FIELDS,
                "media.fields": _MEDIA_FIELDS,
                "user.fields": _USER_FIELDS,
            },
            scalars=("max_results", "pagination_token", "since_id", "until_id"),
        )
        max_results = _max_results(query.get("max_results", "10"))
        newer_than = _tweet_id_param(query, "since_id") or 0
        # Both until_id and a page token mean "older than this id"; both bounds are exclusive.
        older_than = min(_tweet_id_param(query, "until_id") or 2**64, _page_token_bound(query) or 2**64)
        (user_id,) = request.args
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                # X answers a timeline of an unknown user with 200 and a resource-not-found error.
                return HTTPStatus.OK, {"errors": [_user_not_found(user_id)]}
            matches = [
                tweet
                for tweet in reversed(self._live_tweets())
                if newer_than < int(tweet.id) < older_than and user.username.lower() in _mentioned(tweet.text)
            ]
            page = matches[:max_results]
            body = self._render_tweets(page, query)
        if page:
            body["meta"] = {"newest_id": page[0].id, "oldest_id": page[-1].id, "result_count": len(page)}
            if len(matches) > len(page):
                body["meta"]["next_token"] = f"{int(page[-1].id):x}"
        else:
            body["meta"] = {"result_count": 0}  # and no "data" key, as X does
        return HTTPStatus.OK, body

    def _upload_media(self, request: _Request) -> tuple[HTTPStatus, Json]:
        form = _form_fields(request.content_type, request.body)
        data = form.get("media")
        if data is None:
            raise _invalid_request("media", "", "The `media` field is required")
        category = form.get("media_category", b"").decode("utf-8", "replace")
        if category not in _UPLOAD_CATEGORIES:
            raise _not_one_of("media_category", category, _UPLOAD_CATEGORIES, kind="value")
        media_type = form.get("media_type", b"image/jpeg").decode("utf-8", "replace")
        if media_type not in _UPLOAD_MEDIA_TYPES:
            raise _not_one_of("media_type", media_type, _UPLOAD_MEDIA_TYPES, kind="value")
        if len(data) > MAX_IMAGE_BYTES:
            raise _invalid_request("media", f"{len(data)} bytes", f"The image is larger than {MAX_IMAGE_BYTES} bytes")
        try:
            image_format, width, height = _decode_image(data)
        except ValueError as exc:
            raise _invalid_request("media", f"{len(data)} bytes", f"The `media` field is not an image: {exc}") from exc
        with self._lock:
            media = self._new_media(data, image_format, width, height)
        return HTTPStatus.OK, {
            "data": {
                "id": media.id,
                "media_key": media.media_key,
                "size": len(data),
                "expires_after_secs": MEDIA_EXPIRES_AFTER_S,
                "image": {"image_type": media.content_type, "w": width, "h": height},
            }
        }

    def _create_tweet(self, request: _Request) -> tuple[HTTPStatus, Json]:
        text, reply_to, media_ids = _tweet_body(request.body)
        if len(text) > MAX_TWEET_CHARS:
            limit = f"Your Tweet text is {len(text)} characters, however the limit is {MAX_TWEET_CHARS}."
            raise _invalid_request("text", text, limit)
        if not text and not media_ids:
            raise _invalid_request("text", text, "The `text` field is required when `media.media_ids` is absent")
        if len(media_ids) > MAX_MEDIA_PER_TWEET:
            raise _invalid_request("media.media_ids", media_ids, f"size must be between 1 and {MAX_MEDIA_PER_TWEET}")
        with self._lock:
            by_id = {m.id: m for m in self._media.values()}
            unknown = [media_id for media_id in media_ids if media_id not in by_id]
            if unknown:
                raise _invalid_request("media.media_ids", unknown, "Your media IDs are invalid.")
            if reply_to is not None and not self._is_live(reply_to):
                raise _http_problem(
                    HTTPStatus.FORBIDDEN, "You attempted to reply to a Tweet that is deleted or not visible to you."
                )
            tweet = self._new_tweet(self.bot_user_id, text, [by_id[m].media_key for m in media_ids], reply_to)
        return HTTPStatus.CREATED, {"data": {"id": tweet.id, "text": tweet.text, "edit_history_tweet_ids": [tweet.id]}}

    # -- rendering (callers hold the lock) -----------------------------------------------------

    def _render_tweets(self, tweets: Sequence[SandboxTweet], query: Mapping[str, str]) -> Json:
        """``data`` and ``includes`` for ``tweets``, as the query's fields and expansions ask."""
        expansions = _listed(query, "expansions")
        tweet_fields = _listed(query, "tweet.fields")
        body: Json = {}
        if tweets:
            body["data"] = [self._render_tweet(t, tweet_fields, expansions) for t in tweets]
        includes: dict[str, list[Json]] = {}
        if "attachments.media_keys" in expansions:
            media_fields = _listed(query, "media.fields")
            includes["media"] = [_render_media(self._media[k], media_fields) for t in tweets for k in t.media_keys]
        if "author_id" in expansions:
            user_fields = _listed(query, "user.fields")
            authors = dict.fromkeys(t.author_id for t in tweets)  # each once, in order
            includes["users"] = [_render_user(self._users[a], user_fields) for a in authors]
        if "referenced_tweets.id" in expansions:
            parents = dict.fromkeys(t.in_reply_to_tweet_id for t in tweets if t.in_reply_to_tweet_id)
            includes["tweets"] = [
                self._render_tweet(self._tweets[p], tweet_fields, frozenset()) for p in parents if self._is_live(p)
            ]
        includes = {kind: objects for kind, objects in includes.items() if objects}
        if includes:
            body["includes"] = includes
        return body

    def _render_tweet(self, tweet: SandboxTweet, fields: Collection[str], expansions: Collection[str]) -> Json:
        """A tweet object: id, text and edit history always; the rest when asked, as X does.

        An expansion implies the field it expands (docs.x.com/x-api/fundamentals/expansions).
        """
        data: Json = {"id": tweet.id, "text": tweet.text, "edit_history_tweet_ids": [tweet.id]}
        if "author_id" in fields or "author_id" in expansions:
            data["author_id"] = tweet.author_id
        if "created_at" in fields:
            data["created_at"] = _timestamp(tweet.created_at)
        if "conversation_id" in fields:
            data["conversation_id"] = tweet.conversation_id
        if tweet.in_reply_to_tweet_id is not None:
            if "in_reply_to_user_id" in fields:
                data["in_reply_to_user_id"] = self._tweets[tweet.in_reply_to_tweet_id].author_id
            if "referenced_tweets" in fields or "referenced_tweets.id" in expansions:
                data["referenced_tweets"] = [{"type": "replied_to", "id": tweet.in_reply_to_tweet_id}]
        if tweet.media_keys and ("attachments" in fields or "attachments.media_keys" in expansions):
            data["attachments"] = {"media_keys": list(tweet.media_keys)}
        if "entities" in fields and (mentions := self._mention_entities(tweet.text)):
            data["entities"] = {"mentions": mentions}
        return data

    def _mention_entities(self, text: str) -> list[Json]:
        entities = []
        for found in _MENTION.finditer(text):
            entity: Json = {"start": found.start(), "end": found.end(), "username": found[1]}
            if user_id := self._user_ids.get(found[1].lower()):
                entity["id"] = user_id
            entities.append(entity)
        return entities


class _Server(ThreadingHTTPServer):
    """The HTTP server, knowing which sandbox its handlers answer for."""

    def __init__(self, address: tuple[str, int], sandbox: SandboxX) -> None:
        super().__init__(address, _RequestHandler)
        self.sandbox = sandbox


class _RequestHandler(BaseHTTPRequestHandler):
    """Reads a request, lets the sandbox answer it, writes the answer."""

    server: _Server

    def _serve(self) -> None:
        # Read the whole body first, even for a request about to be refused, so the client is
        # never cut off mid-send.
        headers = {name.lower(): value for name, value in self.headers.items()}
        body = self.rfile.read(int(headers.get("content-length") or 0))
        reply = self.server.sandbox._respond(self.command, self.path, headers, body)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: stderr belongs to the tests and the demo."""


# -- request parsing ---------------------------------------------------------------------------


def _check_query(query: Mapping[str, str], lists: Mapping[str, frozenset[str]], scalars: Collection[str] = ()) -> None:
    """Refuse, as X does, unknown query parameters and list values outside what is supported."""
    for name, value in query.items():
        if name in lists:
            for item in value.split(","):
                if item not in lists[name]:
                    raise _not_one_of(name, item, lists[name])
        elif name not in scalars:
            known = ",".join(sorted([*lists, *scalars]))
            raise _invalid_request(name, value, f"The query parameter [{name}] is not one of [{known}]")


def _listed(query: Mapping[str, str], name: str) -> frozenset[str]:
    """The items of comma-list parameter ``name`` (checked already), empty when absent."""
    return frozenset(query[name].split(",")) if name in query else frozenset()


def _max_results(raw: str) -> int:
    if not re.fullmatch(r"[0-9]{1,3}", raw) or not 5 <= int(raw) <= 100:
        message = f"The `max_results` query parameter value [{raw}] is not between 5 and 100"
        raise _invalid_request("max_results", raw, message)
    return int(raw)


def _tweet_id_param(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not _TWEET_ID.fullmatch(raw):
        raise _invalid_request(name, raw, f"The `{name}` query parameter value [{raw}] does not match ^[0-9]{{1,19}}$")
    return int(raw)


def _page_token_bound(query: Mapping[str, str]) -> int | None:
    """The id a ``pagination_token`` continues below: tokens are the last id served, in hex."""
    raw = query.get("pagination_token")
    if raw is None:
        return None
    if not _PAGE_TOKEN.fullmatch(raw):
        message = f"The `pagination_token` query parameter value [{raw}] is not valid"
        raise _invalid_request("pagination_token", raw, message)
    return int(raw, 16)


def _form_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    """The named parts of a multipart/form-data body."""
    if not content_type.startswith("multipart/form-data"):
        raise _invalid_request("Content-Type", content_type, "The sandbox X takes uploads as multipart/form-data")
    # The email parser is the standard library's MIME reader; it needs the type as a header.
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    message = BytesParser(EmailMessage, policy=HTTP).parsebytes(head + body)
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields


def _tweet_body(body: bytes) -> tuple[str, str | None, list[str]]:
    """(text, in_reply_to_tweet_id, media_ids) from a ``POST /2/tweets`` JSON body."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise _invalid_request("body", body[:100].decode("utf-8", "replace"), "The request body is not JSON") from exc
    if not isinstance(payload, dict):
        raise _invalid_request("body", payload, "The request body must be a JSON object")
    unknown = sorted(payload.keys() - {"text", "reply", "media"})
    if unknown:
        name = unknown[0]
        message = f"The sandbox X does not support the `{name}` field; it knows [media,reply,text]"
        raise _invalid_request(name, payload[name], message)
    text = payload.get("text", "")
    reply_to = _json_member(payload, "reply").get("in_reply_to_tweet_id")
    media_ids = _json_member(payload, "media").get("media_ids", [])
    if not isinstance(text, str):
        raise _invalid_request("text", text, "The `text` field must be a string")
    if reply_to is not None and not (isinstance(reply_to, str) and _TWEET_ID.fullmatch(reply_to)):
        name = "reply.in_reply_to_tweet_id"
        raise _invalid_request(name, reply_to, f"The `{name}` field must be a tweet id string")
    if not isinstance(media_ids, list) or not all(isinstance(m, str) for m in media_ids):
        raise _invalid_request("media.media_ids", media_ids, "The `media.media_ids` field must be a list of id strings")
    return text, reply_to, media_ids


def _json_member(payload: Json, name: str) -> Json:
    """The object ``payload[name]``, empty when absent."""
    member = payload.get(name, {})
    if not isinstance(member, dict):
        raise _invalid_request(name, member, f"The `{name}` field must be an object")
    return member


def _decode_image(data: bytes) -> tuple[str, int, int]:
    """(Pillow format, width, height) of encoded image bytes; ValueError if they do not decode."""
    try:
        with Image.open(io.BytesIO(data), formats=_IMAGE_FORMATS) as image:
            image.load()  # the header alone would let a truncated file through
            return str(image.format), image.width, image.height
    except (OSError, SyntaxError, ValueError) as exc:  # what Pillow raises for bytes it cannot read
        raise ValueError(f"cannot decode as {', '.join(_IMAGE_FORMATS)} ({exc})") from exc


# -- rendering ---------------------------------------------------------------------------------


def _render_user(user: _User, fields: Collection[str]) -> Json:
    data: Json = {"id": user.id, "name": user.name, "username": user.username}
    if "created_at" in fields:
        data["created_at"] = _timestamp(user.created_at)
    return data


def _render_media(media: SandboxMedia, fields: Collection[str]) -> Json:
    """A media object: key and type always; X gives photos a ``url``, GIFs a ``preview_image_url``."""
    data: Json = {"media_key": media.media_key, "type": media.type}
    if "width" in fields:
        data["width"] = media.width
    if "height" in fields:
        data["height"] = media.height
    if "url" in fields and media.type == "photo":
        data["url"] = media.url
    if "preview_image_url" in fields and media.type == "animated_gif":
        data["preview_image_url"] = media.url
    return data


def _user_not_found(user_id: str) -> Json:
    return {
        "value": user_id,
        "detail": f"Could not find user with id: [{user_id}].",
        "title": "Not Found Error",
        "resource_type": "user",
        "parameter": "id",
        "resource_id": user_id,
        "type": _RESOURCE_NOT_FOUND,
    }


def _reply_problem(problem: _Problem, headers: Mapping[str, str] = MappingProxyType({})) -> _Reply:
    return _Reply.of_json(problem.status, problem.body, headers)


def _mentioned(text: str) -> set[str]:
    """The lower-cased usernames ``text`` mentions."""
    return {found[1].lower() for found in _MENTION.finditer(text)}


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    """X's timestamp format: ISO 8601 in UTC with milliseconds, e.g. 2024-01-15T10:30:00.000Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
