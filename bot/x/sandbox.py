"""The sandbox X: the project's own emulator of the slice of the X API v2 that Forger uses.

It is a real HTTP server on loopback (``http.server`` in a daemon thread), so the production
client runs against it unchanged, and the demo and the tests never need real X credentials.

It speaks X's JSON shapes, as docs.x.com shows them:

- ``GET /2/users/me``, ``GET /2/users/:id/mentions`` and ``GET /2/users/:id/tweets`` (fields,
  expansions, ``includes``, ``meta`` and ``next_token`` pagination; only the newest 800 mentions
  and 3200 posts are reachable, as on X), and ``GET /2/tweets/:id``;
- ``POST /2/media/upload`` (the one-shot multipart upload), the chunked upload
  (``POST /2/media/upload/initialize``, ``/2/media/upload/:id/append``, ``/:id/finalize``,
  ``GET /2/media/upload?command=STATUS``), ``POST /2/media/metadata`` (alt text) and
  ``POST /2/tweets`` (text, reply, media, ``made_with_ai``);
- the media bytes behind each media ``url``, at ``/media/<media_key>.<ext>``, without auth;
- X's problem objects for errors (``title``, ``detail``, ``type``), ``x-rate-limit-*`` headers
  counted per endpoint and window, and the ``usage-capped`` 429 of a spent usage cap;
- X's 403 for a post whose text the bot posted already within ``DUPLICATE_WINDOW_S`` (X does
  not say how long it remembers; a day here).

It speaks either of X's dialects, chosen by ``dialect``: "posts", X's current names (OpenAPI spec
v2.167, 2026-08: ``post.fields`` without ``author_id`` or ``referenced_tweets``, the expansion
``referenced_posts``, Post objects with ``referenced_posts`` and ``edit_history_post_ids``,
``includes.posts``, a one-shot upload taking only ``media``, ``media_category`` and
``additional_owners``), or "tweets", the names before (``tweet.fields``, ``referenced_tweets.id``,
``includes.tweets``, ``media_type``). The other dialect's names are refused with X's 400s.

It rejects, in X's own ``invalid-request`` format, the fields, expansions and parameters it does
not render, so a client that asks for more than the sandbox knows fails loudly, not silently.

The test and demo side drives it in-process: ``post`` tweets (photos, GIFs, videos, replies) as
any user, ``retweet``, read what the bot posted with ``tweets_by`` and ``replies_to``, look at
``media`` bytes, ``delete`` tweets, and switch faults on: ``fail`` (5xx or 429 answers),
``slow`` (late answers), ``outage`` and ``recover`` (every read or write failing until told
otherwise), ``cap`` (usage caps), ``replace_media`` (bytes that lie about their
type), ``post(indexed=False)`` then ``index`` (a mention that shows up late). Time comes from
``clock`` (a ``ManualClock`` in tests), so windows, caps and processing never need a real wait.
"""

from __future__ import annotations

import dataclasses
import io
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

from bot.x.settings import XCredentials
from bot.x.snowflake import id_at

# Per-user requests per 15-minute window. Mentions, posts, lookups and timelines: the table at
# docs.x.com/x-api/fundamentals/rate-limits; users/me: the users lookup introduction. X publishes
# no per-user number for the media endpoints: 500 is a stand-in for each.
DEFAULT_RATE_LIMITS: Mapping[str, int] = MappingProxyType(
    {
        "GET /2/users/me": 75,
        "GET /2/users/:id/mentions": 300,
        "GET /2/users/:id/tweets": 900,
        "GET /2/tweets/:id": 900,
        "POST /2/tweets": 100,
        "POST /2/media/upload": 500,
        "POST /2/media/upload/initialize": 500,
        "POST /2/media/upload/:id/append": 500,
        "POST /2/media/upload/:id/finalize": 500,
        "GET /2/media/upload": 500,
        "POST /2/media/metadata": 500,
    }
)

FIRST_ID = 1_860_000_000_000_000_000  # no sandbox id is below this (late 2024 as a snowflake)
MAX_TWEET_CHARS = 280
DUPLICATE_WINDOW_S = 86_400.0
DUPLICATE = "You are not allowed to create a Tweet with duplicate content."
MAX_MEDIA_PER_TWEET = 4
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # X's limit for an uploaded image
MAX_ALT_TEXT_CHARS = 1000
MEDIA_EXPIRES_AFTER_S = 86_400
MENTION_REACH = 800  # X serves only the newest 800 mentions of a user
TIMELINE_REACH = 3200  # and the newest 3200 posts of a user's own timeline
START_OF_TIME = 1_767_225_600.0  # 2026-01-01T00:00:00Z: where a ManualClock starts by default

_PROBLEMS = "https://api.twitter.com/2/problems/"
_INVALID_REQUEST = _PROBLEMS + "invalid-request"
_RESOURCE_NOT_FOUND = _PROBLEMS + "resource-not-found"
_USAGE_CAPPED = _PROBLEMS + "usage-capped"

# What the sandbox renders; X accepts more, the sandbox refuses the rest (see the module doc).
@dataclass(frozen=True)
class _Dialect:
    """X's names for one generation of its API (see the module doc)."""

    fields_param: str
    fields: frozenset[str]  # what the sandbox renders of the field list
    expansions: frozenset[str]
    referenced_expansion: str
    referenced_key: str  # in a post object
    edit_history_key: str
    includes_key: str  # where referenced posts go
    upload_fields: frozenset[str]  # the one-shot upload's form fields


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
_DIALECTS: Mapping[str, _Dialect] = MappingProxyType({
    "posts": _Dialect(
        fields_param="post.fields",
        fields=frozenset({"attachments", "conversation_id", "created_at", "entities", "id", "text"}),
        expansions=frozenset({"attachments.media_keys", "author_id", "referenced_posts"}),
        referenced_expansion="referenced_posts",
        referenced_key="referenced_posts",
        edit_history_key="edit_history_post_ids",
        includes_key="posts",
        upload_fields=frozenset({"media", "media_category", "additional_owners"}),
    ),
    "tweets": _Dialect(
        fields_param="tweet.fields",
        fields=_TWEET_FIELDS,
        expansions=_EXPANSIONS,
        referenced_expansion="referenced_tweets.id",
        referenced_key="referenced_tweets",
        edit_history_key="edit_history_tweet_ids",
        includes_key="tweets",
        upload_fields=frozenset({"media", "media_category", "media_type", "shared", "additional_owners"}),
    ),
})
DIALECTS = tuple(_DIALECTS)  # "posts" (X's current names) and "tweets" (the names before)
_MEDIA_FIELDS = frozenset({"height", "media_key", "preview_image_url", "type", "url", "width"})
_USER_FIELDS = frozenset({"created_at", "id", "name", "username"})
_TIMELINE_SCALARS = ("max_results", "pagination_token", "since_id", "until_id", "start_time", "end_time")

_UPLOAD_CATEGORIES = frozenset({"tweet_image"})
_UPLOAD_MEDIA_TYPES = frozenset({"image/jpeg", "image/bmp", "image/png", "image/webp", "image/pjpeg", "image/tiff"})
_CHUNKED_CATEGORIES = frozenset({"tweet_image", "tweet_gif", "tweet_video", "amplify_video"})
_CHUNKED_MEDIA_TYPES = _UPLOAD_MEDIA_TYPES | {"image/gif", "video/mp4", "video/quicktime", "video/webm"}
_CHUNKED_MAX_BYTES = 512 * 1024 * 1024
_IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")  # what X takes as images
_KEY_PREFIX = {"photo": "3", "animated_gif": "16", "video": "7"}  # media key prefixes, as X's

# An @handle: X usernames are 1-15 of [A-Za-z0-9_], not glued to a word on either side.
_MENTION = re.compile(r"(?<![A-Za-z0-9_])@([A-Za-z0-9_]{1,15})(?![A-Za-z0-9_])")
_TWEET_ID = re.compile(r"[0-9]{1,19}")
_PAGE_TOKEN = re.compile(r"[0-9a-f]{1,16}")
_MEDIA_PATH = re.compile(r"/media/([0-9]+_[0-9]+)\.[a-z0-9]+")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,3})?Z")

Json = dict[str, Any]


class ManualClock:
    """A clock a test moves by hand: give it to the sandbox and the client as ``clock``."""

    def __init__(self, start: float = START_OF_TIME) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self.now += seconds


@dataclass(frozen=True)
class SandboxMedia:
    """A media object on the sandbox: its bytes, how X describes it, and its alt text."""

    media_key: str  # "3_<id>" for a photo, "16_<id>" for a GIF, "7_<id>" for a video
    type: str  # "photo", "animated_gif" or "video"
    data: bytes = field(repr=False)
    content_type: str
    width: int
    height: int
    url: str  # served by the sandbox, no auth needed
    alt_text: str | None = None
    ready_at: float = 0.0  # before this (clock time) X is still processing it

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
    retweet_of: str | None = None
    made_with_ai: bool = False


@dataclass(frozen=True)
class _User:
    id: str
    username: str
    name: str
    created_at: datetime


@dataclass
class _Upload:
    """A chunked upload between initialize and finalize."""

    media_type: str
    category: str
    total_bytes: int
    segments: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class _Fault:
    status: int
    rate_headers: bool
    detail: str


class _Problem(Exception):
    """An X error answer: raised by an endpoint, written out by the dispatcher."""

    def __init__(self, status: HTTPStatus, body: Json) -> None:
        super().__init__(f"{int(status)} {body.get('detail')}")
        self.status = status
        self.body = body


def _http_problem(status: HTTPStatus, detail: str | None = None) -> _Problem:
    """A plain HTTP problem (type about:blank), the shape X answers 401, 403, 429 and 5xx with."""
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


def _usage_capped(period: str) -> _Problem:
    """X's 429 when a usage cap is spent (as X answered it in 2026: xdevplatform/xdk issue 25)."""
    body = {
        "account_id": "1",
        "product_name": "standard-basic",
        "title": "UsageCapExceeded",
        "period": period,
        "scope": "Product",
        "detail": f"Usage cap exceeded: {period} product cap",
        "type": _USAGE_CAPPED,
    }
    return _Problem(HTTPStatus.TOO_MANY_REQUESTS, body)


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


def call_kind(endpoint: str) -> str:
    """"read" or "write": the two kinds of call a usage cap stops (reads: every GET)."""
    return "read" if endpoint.startswith("GET ") else "write"


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
        clock: Callable[[], float] | None = None,
        dialect: str = "posts",
        mention_reach: int = MENTION_REACH,
        processing_s: float = 0.0,
        made_with_ai: bool = True,
    ) -> None:
        """Set up an empty X holding only the bot user; ``start()`` opens the port.

        ``rate_limits`` overrides per endpoint key (see ``DEFAULT_RATE_LIMITS``), counted per
        window of ``window_s`` seconds of ``clock`` (default: the real time). ``dialect``
        is the names it takes: "posts" (X's current ones) or "tweets" (those before). ``mention_reach`` is how many of the newest mentions
        can be read. ``processing_s`` makes each chunked upload take that long to process.
        ``made_with_ai=False`` is an X that does not know the post field yet (it refuses it).
        """
        overrides = dict(rate_limits or {})
        for key, limit in overrides.items():
            if key not in DEFAULT_RATE_LIMITS:
                raise ValueError(f"rate_limits has unknown endpoint {key!r}; known: {', '.join(DEFAULT_RATE_LIMITS)}")
            if limit < 0:
                raise ValueError(f"rate_limits[{key!r}] must be >= 0, got: {limit}")
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got: {window_s}")
        if mention_reach < 1:
            raise ValueError(f"mention_reach must be positive, got: {mention_reach}")
        if processing_s < 0:
            raise ValueError(f"processing_s must be 0 or more, got: {processing_s}")
        if dialect not in _DIALECTS:
            raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}, got: {dialect!r}")
        self._address = (host, port)
        self._limits = {**DEFAULT_RATE_LIMITS, **overrides}
        self._window_s = window_s
        self._clock = clock or time.time
        self.dialect = dialect
        self._names = _DIALECTS[dialect]
        self._mention_reach = mention_reach
        self._processing_s = processing_s
        self._tweet_members = {"text", "reply", "media", *(("made_with_ai",) if made_with_ai else ())}
        self._lock = threading.Lock()  # guards everything below, for the HTTP threads and the caller
        self._last_id = FIRST_ID - 1
        self._users: dict[str, _User] = {}  # by id
        self._user_ids: dict[str, str] = {}  # lower-cased username -> id
        self._tweets: dict[str, SandboxTweet] = {}  # by id, oldest first
        self._deleted: set[str] = set()
        self._unindexed: set[str] = set()  # posted, not yet in any listing
        self._media: dict[str, SandboxMedia] = {}  # by media key
        self._uploads: dict[str, _Upload] = {}  # chunked uploads not finalized yet, by media id
        self._windows: dict[str, tuple[float, int]] = {}  # endpoint key -> (reset epoch, requests)
        self._faults: dict[str, list[_Fault]] = {}  # endpoint key -> answers to give next
        self._delays: dict[str, float] = {}  # endpoint key or "media" -> seconds to wait
        self._caps: dict[str, str] = {}  # "read"/"write" -> the period X names
        self._outages: dict[str, int] = {}  # "read"/"write" -> the HTTP status every such call gets
        self._posted: dict[str, float] = {}  # text the bot posted -> when, for X's duplicate check
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self._routes = (
            _Route("GET", "/2/users/me", self._get_me),
            _Route("GET", "/2/users/:id/mentions", self._get_mentions),
            _Route("GET", "/2/users/:id/tweets", self._get_user_tweets),
            _Route("GET", "/2/tweets/:id", self._get_tweet),
            _Route("POST", "/2/media/upload", self._upload_media),
            _Route("POST", "/2/media/upload/initialize", self._upload_initialize),
            _Route("POST", "/2/media/upload/:id/append", self._upload_append),
            _Route("POST", "/2/media/upload/:id/finalize", self._upload_finalize),
            _Route("GET", "/2/media/upload", self._upload_status),
            _Route("POST", "/2/media/metadata", self._media_metadata),
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

    @property
    def media_host(self) -> str:
        """The host name in the sandbox's media urls (what a downloader must allow)."""
        return self._address[0]

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
                self._users[user_id] = _User(user_id, username, name or username.title(), self._now())
                self._user_ids[username.lower()] = user_id
            return user_id

    def post(
        self,
        author: str,
        text: str,
        images: Sequence[bytes] = (),
        in_reply_to: str | None = None,
        *,
        videos: int = 0,
        indexed: bool = True,
    ) -> str:
        """Post a tweet as ``author`` (added if new), with up to 4 media; returns its id.

        ``images`` are encoded images (a GIF becomes an ``animated_gif``); ``videos`` adds that
        many stand-in videos. A tweet whose text holds "@<bot_username>" mentions the bot.
        ``indexed=False`` keeps it out of every listing until ``index`` (X's late mentions).
        Media need the server started, since each one's url points at it.
        """
        if len(images) + videos > MAX_MEDIA_PER_TWEET:
            raise ValueError(f"a tweet holds at most {MAX_MEDIA_PER_TWEET} media, got: {len(images) + videos}")
        decoded = [(data, *_decode_image(data)) for data in images]
        author_id = self.add_user(author)
        with self._lock:
            if in_reply_to is not None and not self._is_live(in_reply_to):
                raise LookupError(f"the sandbox X has no tweet {in_reply_to} to reply to (or it was deleted)")
            media = [self._new_media(*image) for image in decoded]
            media += [self._new_video() for _ in range(videos)]
            tweet = self._new_tweet(author_id, text, [m.media_key for m in media], in_reply_to)
            if not indexed:
                self._unindexed.add(tweet.id)
            return tweet.id

    def index(self, tweet_id: str) -> None:
        """Let a tweet posted with ``indexed=False`` show up in listings from now on."""
        with self._lock:
            self._tweet(tweet_id)
            self._unindexed.discard(tweet_id)

    def retweet(self, author: str, tweet_id: str) -> str:
        """Retweet ``tweet_id`` as ``author``; the retweet's text is "RT @user: <text>", as X's."""
        author_id = self.add_user(author)
        with self._lock:
            original = self._tweet(tweet_id)
            text = f"RT @{original.author_username}: {original.text}"
            tweet = self._new_tweet(author_id, text, (), None)
            tweet = dataclasses.replace(tweet, retweet_of=tweet_id)
            self._tweets[tweet.id] = tweet
            return tweet.id

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
            self._tweet(tweet_id)
            return [t for t in self._live_tweets() if t.in_reply_to_tweet_id == tweet_id]

    def media(self, media_key: str) -> SandboxMedia:
        """The media object ``media_key``, with its bytes."""
        with self._lock:
            if media_key not in self._media:
                raise LookupError(f"the sandbox X has no media {media_key}")
            return self._media[media_key]

    def replace_media(self, media_key: str, data: bytes, content_type: str | None = None) -> None:
        """Serve ``data`` (and ``content_type``) at the media's url from now on: a lying file."""
        with self._lock:
            media = self._stored_media(media_key)
            self._media[media_key] = dataclasses.replace(
                media, data=data, content_type=content_type or media.content_type
            )

    def delete(self, tweet_id: str) -> None:
        """Delete tweet ``tweet_id``: it leaves every listing and can no longer be replied to."""
        with self._lock:
            self._tweet(tweet_id)
            self._deleted.add(tweet_id)

    # -- faults --------------------------------------------------------------------------------

    def fail(
        self, endpoint: str, status: int = 503, *, times: int = 1, rate_headers: bool = True,
        detail: str = "The sandbox X was told to fail this call.",
    ) -> None:
        """Answer the next ``times`` calls of ``endpoint`` with HTTP ``status`` (e.g. 503, 500, 429).

        A 429 this way looks like a spent window; ``rate_headers=False`` leaves out the
        ``x-rate-limit-*`` headers, as a proxy in front of X might. ``detail`` is the problem's
        words (X's own, for a 403: its reasons differ).
        """
        self._known(endpoint)
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error from 400 to 599, got: {status}")
        with self._lock:
            self._faults.setdefault(endpoint, []).extend([_Fault(status, rate_headers, detail)] * times)

    def slow(self, endpoint: str, seconds: float) -> None:
        """Wait ``seconds`` (real time) before answering ``endpoint``, or "media" for media bytes,
        or "media:<media_key>" for one photo's bytes (a slow host)."""
        if endpoint.startswith("media:"):
            self._stored_media(endpoint.removeprefix("media:"))
        elif endpoint != "media":
            self._known(endpoint)
        with self._lock:
            if seconds > 0:
                self._delays[endpoint] = seconds
            else:
                self._delays.pop(endpoint, None)

    def outage(self, kind: str, status: int = 503) -> None:
        """Answer every call of ``kind`` ("read" or "write") with HTTP ``status`` until ``recover``."""
        if kind not in ("read", "write"):
            raise ValueError(f"kind must be 'read' or 'write', got: {kind!r}")
        if not 500 <= status <= 599:
            raise ValueError(f"status must be an HTTP server error from 500 to 599, got: {status}")
        with self._lock:
            self._outages[kind] = status

    def recover(self, kind: str) -> None:
        """The outage of ``kind`` calls is over."""
        with self._lock:
            self._outages.pop(kind, None)

    def cap(self, kind: str, period: str = "Monthly") -> None:
        """Spend the usage cap of ``kind`` ("read" or "write"): such calls get X's usage-capped 429."""
        if kind not in ("read", "write"):
            raise ValueError(f"kind must be 'read' or 'write', got: {kind!r}")
        with self._lock:
            self._caps[kind] = period

    def uncap(self, kind: str) -> None:
        """A new period began: ``kind`` calls work again."""
        with self._lock:
            self._caps.pop(kind, None)

    def _known(self, endpoint: str) -> None:
        if endpoint not in DEFAULT_RATE_LIMITS:
            raise ValueError(f"unknown endpoint {endpoint!r}; known: {', '.join(DEFAULT_RATE_LIMITS)}")

    # -- state (callers hold the lock) ---------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _next_id(self) -> str:
        """A snowflake of the clock's now, and always above the last id given (as X's are)."""
        self._last_id = max(self._last_id + 1, id_at(self._clock()))
        return str(self._last_id)

    def _live_tweets(self) -> list[SandboxTweet]:
        return [t for t in self._tweets.values() if t.id not in self._deleted]

    def _listed_tweets(self) -> list[SandboxTweet]:
        """What listings show: live and indexed, newest first."""
        return [t for t in reversed(self._live_tweets()) if t.id not in self._unindexed]

    def _is_live(self, tweet_id: str) -> bool:
        return tweet_id in self._tweets and tweet_id not in self._deleted

    def _tweet(self, tweet_id: str) -> SandboxTweet:
        if tweet_id not in self._tweets:
            raise LookupError(f"the sandbox X has no tweet {tweet_id}")
        return self._tweets[tweet_id]

    def _stored_media(self, media_key: str) -> SandboxMedia:
        if media_key not in self._media:
            raise LookupError(f"the sandbox X has no media {media_key}")
        return self._media[media_key]

    def _new_media(
        self, data: bytes, image_format: str, width: int, height: int, *, media_id: str | None = None,
        ready_at: float = 0.0,
    ) -> SandboxMedia:
        kind = "animated_gif" if image_format == "GIF" else "photo"
        key = f"{_KEY_PREFIX[kind]}_{media_id or self._next_id()}"
        extension = "jpg" if image_format == "JPEG" else image_format.lower()
        media = SandboxMedia(
            media_key=key,
            type=kind,
            data=data,
            content_type=Image.MIME[image_format],
            width=width,
            height=height,
            url=f"{self.base_url}/media/{key}.{extension}",
            ready_at=ready_at,
        )
        self._media[key] = media
        return media

    def _new_video(self) -> SandboxMedia:
        key = f"{_KEY_PREFIX['video']}_{self._next_id()}"
        media = SandboxMedia(key, "video", b"\x00\x00\x00\x18ftypmp42", "video/mp4", 640, 360, f"{self.base_url}/media/{key}.mp4")
        self._media[key] = media
        return media

    def _new_tweet(self, author_id: str, text: str, media_keys: Sequence[str], in_reply_to: str | None) -> SandboxTweet:
        tweet_id = self._next_id()
        if media_keys:  # as X's: a tweet's media are linked at the end of its text, one t.co link for all
            text = f"{text} https://t.co/{int(tweet_id) % 16**10:010x}".lstrip()
        tweet = SandboxTweet(
            id=tweet_id,
            text=text,
            author_id=author_id,
            author_username=self._users[author_id].username,
            created_at=self._now(),
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
            self._wait("media")
            self._wait(f"media:{media_path[1]}")
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
        self._wait(route.key)
        within_limit, rate_headers = self._count_request(route.key)
        with self._lock:
            outage = self._outages.get(call_kind(route.key))
            faults = self._faults.get(route.key) if outage is None else None
            fault = faults.pop(0) if faults else None
            period = self._caps.get(call_kind(route.key))
        if outage is not None:  # X is down: no rate-limit headers, no problem of its own
            return _reply_problem(_http_problem(HTTPStatus(outage)))
        if fault is not None:
            problem = _http_problem(HTTPStatus(fault.status), fault.detail)
            return _reply_problem(problem, rate_headers if fault.rate_headers else {})
        if period is not None:
            return _reply_problem(_usage_capped(period), rate_headers)
        if not within_limit:
            return _reply_problem(_http_problem(HTTPStatus.TOO_MANY_REQUESTS), rate_headers)
        request = _Request(args, dict(parse_qsl(query, keep_blank_values=True)), headers.get("content-type", ""), body)
        try:
            status, payload = route.handler(request)
        except _Problem as problem:
            return _reply_problem(problem, rate_headers)
        return _Reply.of_json(status, payload, rate_headers)

    def _wait(self, key: str) -> None:
        with self._lock:
            delay = self._delays.get(key, 0.0)
        if delay:
            time.sleep(delay)  # the fault itself: a slow X, in the server's thread

    def _count_request(self, key: str) -> tuple[bool, dict[str, str]]:
        """Spend one request of endpoint ``key``'s window: whether it fits, and the headers to send."""
        now = self._clock()
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

    # -- endpoints: reading --------------------------------------------------------------------

    def _get_me(self, request: _Request) -> tuple[HTTPStatus, Json]:
        _check_query(request.query, {"user.fields": _USER_FIELDS})
        with self._lock:
            bot = self._users[self.bot_user_id]
        return HTTPStatus.OK, {"data": _render_user(bot, _listed(request.query, "user.fields"))}

    def _tweet_lists(self) -> dict[str, frozenset[str]]:
        """The list parameters of the endpoints that return tweets, under this sandbox's names."""
        return {
            "expansions": self._names.expansions,
            self._names.fields_param: self._names.fields,
            "media.fields": _MEDIA_FIELDS,
            "user.fields": _USER_FIELDS,
        }

    def _get_mentions(self, request: _Request) -> tuple[HTTPStatus, Json]:
        (user_id,) = request.args
        with self._lock:
            user = self._users.get(user_id)
        if user is None:
            # X answers a timeline of an unknown user with 200 and a resource-not-found error.
            _check_query(request.query, self._tweet_lists(), _TIMELINE_SCALARS)
            return HTTPStatus.OK, {"errors": [_not_found("user", user_id)]}
        name = user.username.lower()
        return self._timeline(request, lambda t: name in _mentioned(t.text), self._mention_reach)

    def _get_user_tweets(self, request: _Request) -> tuple[HTTPStatus, Json]:
        (user_id,) = request.args
        with self._lock:
            known = user_id in self._users
        if not known:
            _check_query(request.query, self._tweet_lists(), _TIMELINE_SCALARS)
            return HTTPStatus.OK, {"errors": [_not_found("user", user_id)]}
        return self._timeline(request, lambda t: t.author_id == user_id, TIMELINE_REACH)

    def _timeline(self, request: _Request, wanted: Callable[[SandboxTweet], bool], reach: int) -> tuple[HTTPStatus, Json]:
        """A page of the newest ``reach`` tweets that are ``wanted``, newest first, as X pages them."""
        query = request.query
        _check_query(query, self._tweet_lists(), _TIMELINE_SCALARS)
        max_results = _max_results(query.get("max_results", "10"))
        newer_than = _tweet_id_param(query, "since_id") or 0
        # Both until_id and a page token mean "older than this id"; both bounds are exclusive.
        older_than = min(_tweet_id_param(query, "until_id") or 2**64, _page_token_bound(query) or 2**64)
        start, end = _time_param(query, "start_time"), _time_param(query, "end_time")
        with self._lock:
            reachable = [t for t in self._listed_tweets() if wanted(t)][:reach]
            matches = [
                t for t in reachable
                if newer_than < int(t.id) < older_than
                and (start is None or t.created_at >= start)
                and (end is None or t.created_at <= end)
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

    def _get_tweet(self, request: _Request) -> tuple[HTTPStatus, Json]:
        _check_query(request.query, self._tweet_lists())
        (tweet_id,) = request.args
        with self._lock:
            if not self._is_live(tweet_id):
                return HTTPStatus.OK, {"errors": [_not_found("tweet", tweet_id)]}
            body = self._render_tweets([self._tweets[tweet_id]], request.query)
        body["data"] = body["data"][0]  # one tweet: an object, not a list
        return HTTPStatus.OK, body

    # -- endpoints: media ----------------------------------------------------------------------

    def _upload_media(self, request: _Request) -> tuple[HTTPStatus, Json]:
        form = _form_fields(request.content_type, request.body)
        allowed = self._names.upload_fields
        for name in sorted(form.keys() - allowed):
            value = form[name].decode("utf-8", "replace")
            raise _invalid_request(name, value, f"The `{name}` field is not one of [{','.join(sorted(allowed))}]")
        data = form.get("media")
        if data is None:
            raise _invalid_request("media", "", "The `media` field is required")
        category = form.get("media_category", b"").decode("utf-8", "replace")
        if category not in _UPLOAD_CATEGORIES:
            raise _not_one_of("media_category", category, _UPLOAD_CATEGORIES, kind="value")
        media_type = form.get("media_type", b"image/jpeg").decode("utf-8", "replace")
        if media_type not in _UPLOAD_MEDIA_TYPES:
            raise _not_one_of("media_type", media_type, _UPLOAD_MEDIA_TYPES, kind="value")
        with self._lock:
            media = self._store_image(data)
        return HTTPStatus.OK, {"data": self._render_upload(media)}

    def _upload_initialize(self, request: _Request) -> tuple[HTTPStatus, Json]:
        payload = _json_body(request.body, {"media_type", "total_bytes", "media_category", "shared", "additional_owners"})
        media_type = payload.get("media_type")
        if media_type not in _CHUNKED_MEDIA_TYPES:
            raise _not_one_of("media_type", str(media_type), _CHUNKED_MEDIA_TYPES, kind="value")
        category = payload.get("media_category", "tweet_image")
        if category not in _CHUNKED_CATEGORIES:
            raise _not_one_of("media_category", str(category), _CHUNKED_CATEGORIES, kind="value")
        total = payload.get("total_bytes")
        if not isinstance(total, int) or isinstance(total, bool) or not 0 < total <= _CHUNKED_MAX_BYTES:
            raise _invalid_request("total_bytes", total, f"The `total_bytes` field must be from 1 to {_CHUNKED_MAX_BYTES}")
        with self._lock:
            media_id = self._next_id()
            self._uploads[media_id] = _Upload(media_type, category, total)
        prefix = _KEY_PREFIX["video" if "video" in category else "animated_gif" if category == "tweet_gif" else "photo"]
        data = {"id": media_id, "media_key": f"{prefix}_{media_id}", "expires_after_secs": MEDIA_EXPIRES_AFTER_S}
        return HTTPStatus.OK, {"data": data}

    def _upload_append(self, request: _Request) -> tuple[HTTPStatus, Json]:
        (media_id,) = request.args
        form = _form_fields(request.content_type, request.body)
        raw_index = form.get("segment_index", b"").decode("utf-8", "replace")
        if not re.fullmatch(r"[0-9]{1,3}", raw_index):
            raise _invalid_request("segment_index", raw_index, "The `segment_index` field must be from 0 to 999")
        if "media" not in form:
            raise _invalid_request("media", "", "The `media` field is required")
        with self._lock:
            upload = self._upload(media_id)
            upload.segments[int(raw_index)] = form["media"]  # the same index again replaces it
        return HTTPStatus.OK, {"data": {"expires_at": math.ceil(self._clock() + MEDIA_EXPIRES_AFTER_S)}}

    def _upload_finalize(self, request: _Request) -> tuple[HTTPStatus, Json]:
        (media_id,) = request.args
        with self._lock:
            upload = self._upload(media_id)
            data = b"".join(upload.segments[i] for i in sorted(upload.segments))
            if len(data) != upload.total_bytes:
                message = f"The segments hold {len(data)} bytes, but total_bytes was {upload.total_bytes}"
                raise _invalid_request("id", media_id, message)
            if not upload.media_type.startswith("image/"):
                raise _invalid_request("id", media_id, "The sandbox X finalizes images only")
            ready_at = self._clock() + self._processing_s if self._processing_s else 0.0
            media = self._store_image(data, media_id=media_id, ready_at=ready_at)
            del self._uploads[media_id]
            return HTTPStatus.OK, {"data": self._render_upload(media)}

    def _upload_status(self, request: _Request) -> tuple[HTTPStatus, Json]:
        _check_query(request.query, {}, ("command", "media_id"))
        if request.query.get("command") != "STATUS":
            raise _not_one_of("command", request.query.get("command", ""), {"STATUS"})
        media_id = request.query.get("media_id", "")
        with self._lock:
            media = next((m for m in self._media.values() if m.id == media_id), None)
            if media is None:
                raise _invalid_request("media_id", media_id, f"The media id [{media_id}] is unknown or not finalized")
            return HTTPStatus.OK, {"data": self._render_upload(media, status=True)}

    def _media_metadata(self, request: _Request) -> tuple[HTTPStatus, Json]:
        payload = _json_body(request.body, {"id", "metadata"})
        media_id = payload.get("id")
        metadata = _json_member(payload, "metadata")
        unknown = sorted(metadata.keys() - {"alt_text"})
        if unknown:
            raise _invalid_request(f"metadata.{unknown[0]}", metadata[unknown[0]], "The sandbox X keeps only alt_text")
        text = _json_member(metadata, "alt_text").get("text")
        if not isinstance(text, str) or not 0 < len(text) <= MAX_ALT_TEXT_CHARS:
            raise _invalid_request("metadata.alt_text.text", text, f"The alt text must be 1 to {MAX_ALT_TEXT_CHARS} characters")
        with self._lock:
            media = next((m for m in self._media.values() if m.id == media_id), None)
            if media is None:
                raise _invalid_request("id", str(media_id), "Your media ID is invalid.")
            self._media[media.media_key] = dataclasses.replace(media, alt_text=text)
        return HTTPStatus.OK, {"data": {"id": media.id, "associated_metadata": {"alt_text": {"text": text}}}}

    def _upload(self, media_id: str) -> _Upload:
        upload = self._uploads.get(media_id)
        if upload is None:
            raise _invalid_request("id", media_id, f"There is no upload in progress with the media id [{media_id}]")
        return upload

    def _store_image(self, data: bytes, *, media_id: str | None = None, ready_at: float = 0.0) -> SandboxMedia:
        if len(data) > MAX_IMAGE_BYTES:
            raise _invalid_request("media", f"{len(data)} bytes", f"The image is larger than {MAX_IMAGE_BYTES} bytes")
        try:
            image_format, width, height = _decode_image(data)
        except ValueError as exc:
            raise _invalid_request("media", f"{len(data)} bytes", f"The `media` field is not an image: {exc}") from exc
        return self._new_media(data, image_format, width, height, media_id=media_id, ready_at=ready_at)

    def _render_upload(self, media: SandboxMedia, *, status: bool = False) -> Json:
        """An upload's ``data``: X adds ``processing_info`` while (and, for STATUS, after) it processes."""
        data: Json = {
            "id": media.id,
            "media_key": media.media_key,
            "size": len(media.data),
            "expires_after_secs": MEDIA_EXPIRES_AFTER_S,
            "image": {"image_type": media.content_type, "w": media.width, "h": media.height},
        }
        left = media.ready_at - self._clock()
        if left > 0:
            state = "in_progress" if status else "pending"
            data["processing_info"] = {"state": state, "check_after_secs": math.ceil(left), "progress_percent": 0}
        elif status or media.ready_at:
            data["processing_info"] = {"state": "succeeded", "progress_percent": 100}
        return data

    # -- endpoints: writing --------------------------------------------------------------------

    def _create_tweet(self, request: _Request) -> tuple[HTTPStatus, Json]:
        text, reply_to, media_ids, made_with_ai = _tweet_body(request.body, self._tweet_members)
        if len(text) > MAX_TWEET_CHARS:
            limit = f"Your Tweet text is {len(text)} characters, however the limit is {MAX_TWEET_CHARS}."
            raise _invalid_request("text", text, limit)
        if not text and not media_ids:
            raise _invalid_request("text", text, "The `text` field is required when `media.media_ids` is absent")
        if len(media_ids) > MAX_MEDIA_PER_TWEET:
            raise _invalid_request("media.media_ids", media_ids, f"size must be between 1 and {MAX_MEDIA_PER_TWEET}")
        with self._lock:
            now = self._clock()
            by_id = {m.id: m for m in self._media.values() if m.ready_at <= now}
            unknown = [media_id for media_id in media_ids if media_id not in by_id]
            if unknown:
                raise _invalid_request("media.media_ids", unknown, "Your media IDs are invalid.")
            if reply_to is not None and not self._is_live(reply_to):
                raise _http_problem(
                    HTTPStatus.FORBIDDEN, "You attempted to reply to a Tweet that is deleted or not visible to you."
                )
            if text and now - self._posted.get(text, -math.inf) < DUPLICATE_WINDOW_S:
                raise _http_problem(HTTPStatus.FORBIDDEN, DUPLICATE)
            if text:
                self._posted[text] = now
            tweet = self._new_tweet(self.bot_user_id, text, [by_id[m].media_key for m in media_ids], reply_to)
            tweet = dataclasses.replace(tweet, made_with_ai=made_with_ai)
            self._tweets[tweet.id] = tweet
        data = {"id": tweet.id, "text": tweet.text, self._names.edit_history_key: [tweet.id]}
        return HTTPStatus.CREATED, {"data": data}

    # -- rendering (callers hold the lock) -----------------------------------------------------

    def _render_tweets(self, tweets: Sequence[SandboxTweet], query: Mapping[str, str]) -> Json:
        """``data`` and ``includes`` for ``tweets``, as the query's fields and expansions ask."""
        expansions = _listed(query, "expansions")
        tweet_fields = _listed(query, self._names.fields_param)
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
        if self._names.referenced_expansion in expansions:
            referenced = dict.fromkeys(r for t in tweets for r in (t.in_reply_to_tweet_id, t.retweet_of) if r)
            includes[self._names.includes_key] = [
                self._render_tweet(self._tweets[r], tweet_fields, frozenset()) for r in referenced if self._is_live(r)
            ]
        includes = {kind: objects for kind, objects in includes.items() if objects}
        if includes:
            body["includes"] = includes
        return body

    def _render_tweet(self, tweet: SandboxTweet, fields: Collection[str], expansions: Collection[str]) -> Json:
        """A tweet object: id, text and edit history always; the rest when asked, as X does.

        An expansion implies the field it expands (docs.x.com/x-api/fundamentals/expansions).
        """
        names = self._names
        data: Json = {"id": tweet.id, "text": tweet.text, names.edit_history_key: [tweet.id]}
        if "author_id" in fields or "author_id" in expansions:
            data["author_id"] = tweet.author_id
        if "created_at" in fields:
            data["created_at"] = _timestamp(tweet.created_at)
        if "conversation_id" in fields:
            data["conversation_id"] = tweet.conversation_id
        if tweet.in_reply_to_tweet_id is not None and "in_reply_to_user_id" in fields:
            data["in_reply_to_user_id"] = self._tweets[tweet.in_reply_to_tweet_id].author_id
        if names.referenced_key in fields or names.referenced_expansion in expansions:
            referenced = [("replied_to", tweet.in_reply_to_tweet_id), ("retweeted", tweet.retweet_of)]
            if found := [{"type": kind, "id": ref} for kind, ref in referenced if ref]:
                data[names.referenced_key] = found
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
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a slow-answer fault): nobody left to answer

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


def _time_param(query: Mapping[str, str], name: str) -> datetime | None:
    """An ISO 8601 UTC time parameter (YYYY-MM-DDTHH:mm:ssZ), as X takes them."""
    raw = query.get(name)
    if raw is None:
        return None
    if not _TIME.fullmatch(raw):
        raise _invalid_request(name, raw, f"Invalid '{name}':'{raw}'. '{name}' must be a time like YYYY-MM-DDTHH:mm:ssZ")
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


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


def _json_body(body: bytes, known: Collection[str]) -> Json:
    """A JSON object body, refusing members the sandbox does not know."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise _invalid_request("body", body[:100].decode("utf-8", "replace"), "The request body is not JSON") from exc
    if not isinstance(payload, dict):
        raise _invalid_request("body", payload, "The request body must be a JSON object")
    unknown = sorted(payload.keys() - set(known))
    if unknown:
        name = unknown[0]
        message = f"The sandbox X does not support the `{name}` field; it knows [{','.join(sorted(known))}]"
        raise _invalid_request(name, payload[name], message)
    return payload


def _tweet_body(body: bytes, known: Collection[str]) -> tuple[str, str | None, list[str], bool]:
    """(text, in_reply_to_tweet_id, media_ids, made_with_ai) from a ``POST /2/tweets`` JSON body."""
    payload = _json_body(body, known)
    text = payload.get("text", "")
    reply_to = _json_member(payload, "reply").get("in_reply_to_tweet_id")
    media_ids = _json_member(payload, "media").get("media_ids", [])
    made_with_ai = payload.get("made_with_ai", False)
    if not isinstance(text, str):
        raise _invalid_request("text", text, "The `text` field must be a string")
    if reply_to is not None and not (isinstance(reply_to, str) and _TWEET_ID.fullmatch(reply_to)):
        name = "reply.in_reply_to_tweet_id"
        raise _invalid_request(name, reply_to, f"The `{name}` field must be a tweet id string")
    if not isinstance(media_ids, list) or not all(isinstance(m, str) for m in media_ids):
        raise _invalid_request("media.media_ids", media_ids, "The `media.media_ids` field must be a list of id strings")
    if not isinstance(made_with_ai, bool):
        raise _invalid_request("made_with_ai", made_with_ai, "The `made_with_ai` field must be a boolean")
    return text, reply_to, media_ids, made_with_ai


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
    """A media object: key and type always; X gives photos a ``url``, GIFs and videos a preview."""
    data: Json = {"media_key": media.media_key, "type": media.type}
    if "width" in fields:
        data["width"] = media.width
    if "height" in fields:
        data["height"] = media.height
    if "url" in fields and media.type == "photo":
        data["url"] = media.url
    if "preview_image_url" in fields and media.type != "photo":
        data["preview_image_url"] = media.url
    return data


def _not_found(resource: str, resource_id: str) -> Json:
    """X's resource-not-found error for a user or tweet id (inside a 200 answer)."""
    return {
        "value": resource_id,
        "detail": f"Could not find {resource} with id: [{resource_id}].",
        "title": "Not Found Error",
        "resource_type": resource,
        "parameter": "id",
        "resource_id": resource_id,
        "type": _RESOURCE_NOT_FOUND,
    }


def _reply_problem(problem: _Problem, headers: Mapping[str, str] = MappingProxyType({})) -> _Reply:
    return _Reply.of_json(problem.status, problem.body, headers)


def _mentioned(text: str) -> set[str]:
    """The lower-cased usernames ``text`` mentions."""
    return {found[1].lower() for found in _MENTION.finditer(text)}


def _timestamp(moment: datetime) -> str:
    """X's timestamp format: ISO 8601 in UTC with milliseconds, e.g. 2024-01-15T10:30:00.000Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# The environment the bot reads its X keys from, with placeholders the sandbox accepts.
CREDENTIALS_ENV: Mapping[str, str] = MappingProxyType({name: "sandbox" for name in XCredentials.ENV.values()})
