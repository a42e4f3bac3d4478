"""The X gateway: everything Forger says to and hears from the X API v2, behind one small class.

tweepy's ``Client`` does mentions and posts; tweepy has no v2 media upload, so that one call is
made here, signed with tweepy's OAuth 1.0a handler. tweepy hard-codes its API host: the session
below rewrites it, which is the seam that points the bot at the sandbox X in the demo and tests.
tweepy's ``wait_on_rate_limit`` stays off: a 429 is raised as ``XRateLimited`` with its reset
time, and the caller decides when to come back, never sleeping inside the client.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
import tweepy

from bot.config import XCredentials
from bot.errors import MediaError, XAuthError, XError, XRateLimited

log = logging.getLogger(__name__)

TWEEPY_HOST = "https://api.twitter.com"

MENTION_EXPANSIONS = ["attachments.media_keys", "author_id", "referenced_tweets.id"]
MENTION_TWEET_FIELDS = ["created_at", "author_id", "attachments", "conversation_id", "referenced_tweets"]
MENTION_MEDIA_FIELDS = ["media_key", "type", "url", "width", "height"]
MENTION_USER_FIELDS = ["username", "name"]


@dataclass(frozen=True)
class Media:
    """A media attachment of a tweet; ``url`` is set for photos."""

    media_key: str
    type: str  # "photo", "animated_gif" or "video"
    url: str | None
    width: int | None
    height: int | None


@dataclass(frozen=True)
class Mention:
    """A tweet that mentions the bot, with what the bot needs to answer it."""

    id: str
    text: str
    author_id: str
    author_username: str
    created_at: datetime | None
    media: tuple[Media, ...]
    is_retweet: bool

    @property
    def photos(self) -> tuple[Media, ...]:
        return tuple(m for m in self.media if m.type == "photo" and m.url)


@dataclass(frozen=True)
class RateLimit:
    """One endpoint's window, from the ``x-rate-limit-*`` headers of its last answer."""

    limit: int
    remaining: int
    reset_at: int  # epoch seconds


class _HostSession(requests.Session):
    """A requests session that sends tweepy's calls to ``base_url`` instead of api.twitter.com."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if isinstance(url, str) and url.startswith(TWEEPY_HOST):
            url = self.base_url + url[len(TWEEPY_HOST):]
        kwargs.setdefault("timeout", self.timeout_s)
        return super().request(method, url, *args, **kwargs)


class XGateway:
    """The bot's account on X: read its mentions, fetch photos, upload images, reply."""

    def __init__(self, credentials: XCredentials, *, base_url: str, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._credentials = credentials
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
        self._media_session = requests.Session()
        self.rate_limits: dict[str, RateLimit] = {}
        self._me: tuple[str, str] | None = None

    # -- reading -------------------------------------------------------------------------------

    def me(self) -> tuple[str, str]:
        """The bot's (user id, username); asked once, then remembered."""
        if self._me is None:
            with self._translate("GET /2/users/me"):
                response = self._client.get_me(user_auth=True)
            data = self._json(response, "GET /2/users/me")["data"]
            self._me = (str(data["id"]), str(data["username"]))
        return self._me

    def mentions(self, user_id: str, *, since_id: str | None, page_size: int = 100) -> list[Mention]:
        """Every mention of ``user_id`` newer than ``since_id``, oldest first (follows pagination)."""
        found: list[Mention] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = dict(
                since_id=since_id,
                max_results=page_size,
                pagination_token=token,
                expansions=MENTION_EXPANSIONS,
                tweet_fields=MENTION_TWEET_FIELDS,
                media_fields=MENTION_MEDIA_FIELDS,
                user_fields=MENTION_USER_FIELDS,
                user_auth=True,
            )
            params = {k: v for k, v in params.items() if v is not None}
            with self._translate("GET /2/users/:id/mentions"):
                response = self._client.get_users_mentions(user_id, **params)
            body = self._json(response, "GET /2/users/:id/mentions")
            found.extend(parse_mentions(body))
            token = body.get("meta", {}).get("next_token")
            if not token:
                break
        found.sort(key=lambda m: int(m.id))
        return found

    def download(self, url: str, *, max_bytes: int = 20 * 1024 * 1024) -> bytes:
        """The bytes at a media URL, refusing anything larger than ``max_bytes``."""
        try:
            with self._media_session.get(url, stream=True, timeout=self.timeout_s) as response:
                if response.status_code != 200:
                    raise MediaError(f"could not fetch {url}: HTTP {response.status_code}")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaError(f"{url} is larger than {max_bytes // (1024 * 1024)} MB")
                    chunks.append(chunk)
                return b"".join(chunks)
        except requests.RequestException as exc:
            raise XError(f"could not fetch {url}: {exc}") from exc

    # -- writing -------------------------------------------------------------------------------

    def upload_image(self, data: bytes, *, content_type: str = "image/jpeg") -> str:
        """Upload one image with the v2 one-shot upload; returns its media id."""
        route = "POST /2/media/upload"
        auth = tweepy.OAuth1UserHandler(
            self._credentials.api_key,
            self._credentials.api_secret,
            self._credentials.access_token,
            self._credentials.access_token_secret,
        ).apply_auth()
        extension = content_type.split("/")[-1]
        with self._translate(route):
            response = self._client.session.post(
                f"{self.base_url}/2/media/upload",
                files={"media": (f"forger.{extension}", data, content_type)},
                data={"media_category": "tweet_image", "media_type": content_type},
                auth=auth,
            )
            self._raise_for_status(response, route)
        return str(self._json(response, route)["data"]["id"])

    def reply(self, in_reply_to: str, text: str, *, media_ids: tuple[str, ...] = ()) -> str:
        """Post ``text`` (and media) as a reply to tweet ``in_reply_to``; returns the new tweet's id."""
        route = "POST /2/tweets"
        with self._translate(route):
            response = self._client.create_tweet(
                text=text,
                in_reply_to_tweet_id=in_reply_to,
                media_ids=list(media_ids) or None,
                user_auth=True,
            )
        return str(self._json(response, route)["data"]["id"])

    # -- plumbing ------------------------------------------------------------------------------

    def _json(self, response: requests.Response, route: str) -> dict[str, Any]:
        self._note_rate_limit(route, response)
        try:
            body = response.json()
        except ValueError as exc:
            raise XError(f"{route}: X answered with something that is not JSON", status=response.status_code) from exc
        if not isinstance(body, dict):
            raise XError(f"{route}: unexpected answer {body!r}", status=response.status_code)
        return body

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

    def _raise_for_status(self, response: requests.Response, route: str) -> None:
        """Raise the same errors for our own calls as tweepy raises for its own."""
        if response.status_code == 429:
            reset = response.headers.get("x-rate-limit-reset")
            raise tweepy.TooManyRequests(response, reset_time=int(reset) if reset else None)
        errors = {400: tweepy.BadRequest, 401: tweepy.Unauthorized, 403: tweepy.Forbidden, 404: tweepy.NotFound}
        if response.status_code in errors:
            raise errors[response.status_code](response)
        if response.status_code >= 500:
            raise tweepy.TwitterServerError(response)
        if not 200 <= response.status_code < 300:
            raise tweepy.HTTPException(response)

    @contextlib.contextmanager
    def _translate(self, route: str) -> Iterator[None]:
        """Turn tweepy's and requests' exceptions into the bot's own, with X's reason."""
        try:
            yield
        except tweepy.TooManyRequests as exc:
            self._note_rate_limit(route, exc.response)
            reset = getattr(exc, "reset_time", None)
            wait = f", resets in {max(0, reset - int(time.time()))} s" if reset else ""
            raise XRateLimited(f"{route}: rate limit reached{wait}", reset_at=reset) from exc
        except (tweepy.Unauthorized, tweepy.Forbidden) as exc:
            raise XAuthError(
                f"{route}: X refused the bot's credentials or this action "
                f"({exc.response.status_code}: {_reason(exc)}); check X_API_KEY, X_API_SECRET, "
                "X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET and the app's permissions",
                status=exc.response.status_code,
            ) from exc
        except tweepy.HTTPException as exc:
            raise XError(f"{route}: {exc.response.status_code} {_reason(exc)}", status=exc.response.status_code) from exc
        except requests.RequestException as exc:
            raise XError(f"{route}: X could not be reached: {exc}") from exc


def _reason(exc: tweepy.HTTPException) -> str:
    """X's own words for an error: the problem's detail or title, else the HTTP reason."""
    try:
        body = exc.response.json()
    except ValueError:
        return exc.response.reason or "error"
    if isinstance(body, dict):
        for key in ("detail", "title"):
            if body.get(key):
                return str(body[key])
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("detail") or errors[0].get("message") or errors[0])
    return exc.response.reason or "error"


def parse_mentions(body: dict[str, Any]) -> list[Mention]:
    """Turn one page of ``GET /2/users/:id/mentions`` into Mentions (``data`` absent when empty)."""
    includes = body.get("includes", {})
    media_by_key = {
        m["media_key"]: Media(
            media_key=m["media_key"],
            type=m.get("type", "photo"),
            url=m.get("url"),
            width=m.get("width"),
            height=m.get("height"),
        )
        for m in includes.get("media", [])
    }
    users = {u["id"]: u.get("username", u["id"]) for u in includes.get("users", [])}
    mentions = []
    for tweet in body.get("data", []):
        keys = tweet.get("attachments", {}).get("media_keys", [])
        referenced = tweet.get("referenced_tweets", [])
        created = tweet.get("created_at")
        author_id = str(tweet.get("author_id", ""))
        mentions.append(
            Mention(
                id=str(tweet["id"]),
                text=tweet.get("text", ""),
                author_id=author_id,
                author_username=users.get(author_id, author_id),
                created_at=datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None,
                media=tuple(media_by_key[k] for k in keys if k in media_by_key),
                is_retweet=any(r.get("type") == "retweeted" for r in referenced),
            )
        )
    return mentions
