"""The sandbox X over real loopback HTTP: the shapes, the paging, the errors and the rate limits."""

from __future__ import annotations

import io
import random
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import tweepy
from PIL import Image

from bot.x.sandbox import DEFAULT_RATE_LIMITS, FIRST_ID, SandboxX


def encoded_image(width: int = 32, height: int = 24, image_format: str = "JPEG", seed: int = 0) -> bytes:
    """Noise, so the bytes hold every value (CR, LF, dashes) a multipart reader could trip on."""
    noise = random.Random(seed).randbytes(width * height * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), noise).save(buffer, image_format)
    return buffer.getvalue()


@pytest.fixture
def sandbox() -> Iterator[SandboxX]:
    """X before the Post rename: what tweepy's typed methods (and these tests) speak."""
    with SandboxX(bot_username="forgerbot", dialect="tweets") as x:
        yield x


@pytest.fixture
def api() -> Iterator[requests.Session]:
    """A session that authenticates with a bearer token, as any caller of X must."""
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer sandbox-token"
        yield session


def mentions(sandbox: SandboxX, api: requests.Session, **params: Any) -> requests.Response:
    return api.get(f"{sandbox.base_url}/2/users/{sandbox.bot_user_id}/mentions", params=params)


def upload(
    sandbox: SandboxX, api: requests.Session, data: bytes, content_type: str = "image/jpeg"
) -> requests.Response:
    return api.post(
        f"{sandbox.base_url}/2/media/upload",
        files={"media": ("painting.jpg", data, content_type)},
        data={"media_category": "tweet_image", "media_type": content_type},
    )


def test_users_me_is_the_bot(sandbox: SandboxX, api: requests.Session) -> None:
    response = api.get(f"{sandbox.base_url}/2/users/me")

    assert response.status_code == 200
    assert response.json() == {"data": {"id": sandbox.bot_user_id, "name": "Forgerbot", "username": "forgerbot"}}


def test_mentions_since_id_returns_only_newer_mentions_newest_first(sandbox: SandboxX, api: requests.Session) -> None:
    old = sandbox.post("alice", "@forgerbot first")
    sandbox.post("bob", "no mention of the bot here, nor of forgerbot@example.com")
    newer = [sandbox.post("bob", "@ForgerBot second"), sandbox.post("carol", "hey @forgerbot third")]

    body = mentions(sandbox, api, since_id=old).json()

    assert [t["id"] for t in body["data"]] == newer[::-1]
    assert body["data"][0] == {"id": newer[1], "text": "hey @forgerbot third", "edit_history_tweet_ids": [newer[1]]}
    assert body["meta"] == {"newest_id": newer[1], "oldest_id": newer[0], "result_count": 2}


def test_paging_with_max_results_5_yields_every_mention_exactly_once(sandbox: SandboxX, api: requests.Session) -> None:
    since = sandbox.post("alice", "@forgerbot an old one")
    posted = [sandbox.post(f"user{n % 3}", f"@forgerbot number {n}") for n in range(13)]
    sandbox.delete(posted.pop(6))
    sandbox.post("dave", "chatter that mentions nobody")

    seen: list[str] = []
    page_sizes = []
    params: dict[str, Any] = {"since_id": since, "max_results": 5}
    while True:
        body = mentions(sandbox, api, **params).json()
        page_sizes.append(body["meta"]["result_count"])
        seen += [t["id"] for t in body["data"]]
        if "next_token" not in body["meta"]:
            break
        params["pagination_token"] = body["meta"]["next_token"]
        sandbox.post("erin", "@forgerbot arrives while paging")  # newer than page 1: not in this walk

    assert page_sizes == [5, 5, 2]
    assert seen == posted[::-1]


def test_expansions_fill_includes_and_media_urls_serve_the_photos(sandbox: SandboxX, api: requests.Session) -> None:
    photos = [encoded_image(40, 30, seed=1), encoded_image(20, 10, "PNG", seed=2)]
    original = sandbox.post("alice", "my photo, and a painting")
    mention = sandbox.post("bob", "@forgerbot paint this like that", images=photos, in_reply_to=original)

    body = mentions(
        sandbox,
        api,
        expansions="attachments.media_keys,author_id,referenced_tweets.id",
        **{"media.fields": "url,width,height", "user.fields": "username,name", "tweet.fields": "created_at,entities"},
    ).json()

    (tweet,) = body["data"]
    keys = tweet["attachments"]["media_keys"]
    assert tweet["id"] == mention
    assert tweet["author_id"] == sandbox.add_user("bob")  # implied by the expansion
    assert tweet["referenced_tweets"] == [{"type": "replied_to", "id": original}]
    assert tweet["created_at"].endswith("Z")
    assert tweet["entities"]["mentions"] == [
        {"start": 0, "end": 10, "username": "forgerbot", "id": sandbox.bot_user_id}
    ]
    assert body["includes"]["users"] == [{"id": tweet["author_id"], "name": "Bob", "username": "bob"}]
    assert [t["id"] for t in body["includes"]["tweets"]] == [original]
    media = body["includes"]["media"]
    assert [(m["media_key"], m["type"], m["width"], m["height"]) for m in media] == [
        (keys[0], "photo", 40, 30),
        (keys[1], "photo", 20, 10),
    ]
    for item, photo, content_type in zip(media, photos, ["image/jpeg", "image/png"]):
        served = requests.get(item["url"])  # no credentials: media urls are public
        assert served.status_code == 200
        assert served.headers["Content-Type"] == content_type
        assert served.content == photo
        assert Image.open(io.BytesIO(served.content)).size == (item["width"], item["height"])


def test_x_s_current_names_fill_posts_and_the_old_ones_are_refused(api: requests.Session) -> None:
    with SandboxX(bot_username="forgerbot") as x:  # dialect "posts": X's OpenAPI spec v2.167
        original = x.post("alice", "my photo", images=[encoded_image(40, 30, seed=1)])
        mention = x.post("bob", "@forgerbot paint this", in_reply_to=original)

        body = mentions(
            x, api, expansions="attachments.media_keys,author_id,referenced_posts",
            **{"post.fields": "created_at,attachments,conversation_id", "media.fields": "url"},
        ).json()
        old_param = mentions(x, api, **{"tweet.fields": "created_at"})
        old_field = mentions(x, api, **{"post.fields": "author_id"})
        old_expansion = mentions(x, api, expansions="referenced_tweets.id")
        upload = api.post(
            f"{x.base_url}/2/media/upload", files={"media": ("p.jpg", encoded_image(seed=2), "image/jpeg")},
            data={"media_category": "tweet_image", "media_type": "image/jpeg"},
        )
        posted = api.post(f"{x.base_url}/2/tweets", json={"text": "hello", "reply": {"in_reply_to_tweet_id": mention}})

    (post,) = body["data"]
    assert post["id"] == mention and post["author_id"] == x.add_user("bob")  # implied by the expansion
    assert post["referenced_posts"] == [{"type": "replied_to", "id": original}]
    assert post["edit_history_post_ids"] == [mention] and "referenced_tweets" not in post
    assert [p["id"] for p in body["includes"]["posts"]] == [original] and "tweets" not in body["includes"]
    assert posted.status_code == 201 and posted.json()["data"]["edit_history_post_ids"] == [posted.json()["data"]["id"]]
    refused = {
        "tweet.fields": (old_param, "The query parameter [tweet.fields] is not one of [end_time,expansions,"
                         "max_results,media.fields,pagination_token,post.fields,since_id,start_time,until_id,"
                         "user.fields]"),
        "post.fields": (old_field, "The `post.fields` query parameter value [author_id] is not one of "
                        "[attachments,conversation_id,created_at,entities,id,text]"),
        "expansions": (old_expansion, "The `expansions` query parameter value [referenced_tweets.id] is not one "
                       "of [attachments.media_keys,author_id,referenced_posts]"),
        "media_type": (upload, "The `media_type` field is not one of [additional_owners,media,media_category]"),
    }
    for name, (answer, message) in refused.items():
        assert answer.status_code == 400, name
        problem = answer.json()
        assert problem["type"] == "https://api.twitter.com/2/problems/invalid-request"
        [error] = problem["errors"]
        assert list(error["parameters"]) == [name] and error["message"] == message


def test_the_dialect_is_checked() -> None:
    with pytest.raises(ValueError, match="dialect must be one of posts, tweets, got: 'x'"):
        SandboxX(dialect="x")


def test_no_mentions_answers_meta_only(sandbox: SandboxX, api: requests.Session) -> None:
    sandbox.post("alice", "talking to nobody")

    response = mentions(sandbox, api, expansions="author_id")

    assert response.status_code == 200
    assert response.json() == {"meta": {"result_count": 0}}


def test_posted_gifs_are_animated_gif_media_with_a_preview_url(sandbox: SandboxX, api: requests.Session) -> None:
    tweet = sandbox.post("alice", "@forgerbot moving!", images=[encoded_image(8, 8, "GIF")])

    body = mentions(
        sandbox, api, expansions="attachments.media_keys", **{"media.fields": "url,preview_image_url"}
    ).json()

    (media,) = body["includes"]["media"]
    assert media["media_key"].startswith("16_") and media["type"] == "animated_gif"
    assert "url" not in media and media["preview_image_url"] == sandbox.media(media["media_key"]).url
    assert sandbox.tweets_by("alice")[0].media_keys == (media["media_key"],)
    assert int(tweet) > int(media["media_key"].split("_")[1]) >= FIRST_ID


def test_upload_then_reply_shows_up_in_replies_to_with_its_media(sandbox: SandboxX, api: requests.Session) -> None:
    mention = sandbox.post("alice", "@forgerbot paint me", images=[encoded_image(seed=3), encoded_image(seed=4)])
    painting = encoded_image(64, 48, seed=5)

    uploaded = upload(sandbox, api, painting)
    assert uploaded.status_code == 200
    media = uploaded.json()["data"]
    assert media == {
        "id": media["id"],
        "media_key": f"3_{media['id']}",
        "size": len(painting),
        "expires_after_secs": 86400,
        "image": {"image_type": "image/jpeg", "w": 64, "h": 48},
    }

    created = api.post(
        f"{sandbox.base_url}/2/tweets",
        json={
            "text": "@alice here you are",
            "reply": {"in_reply_to_tweet_id": mention},
            "media": {"media_ids": [media["id"]]},
        },
    )

    assert created.status_code == 201
    reply_id = created.json()["data"]["id"]
    data = created.json()["data"]
    assert data == {"id": reply_id, "text": data["text"], "edit_history_tweet_ids": [reply_id]}
    assert re.fullmatch(r"@alice here you are https://t\.co/[0-9a-z]{10}", data["text"])  # X links the media
    (reply,) = sandbox.replies_to(mention)
    assert (reply.id, reply.author_id, reply.author_username) == (reply_id, sandbox.bot_user_id, "forgerbot")
    assert reply.conversation_id == mention
    assert sandbox.media(reply.media_keys[0]).data == painting
    assert sandbox.tweets_by("forgerbot") == [reply]


def test_requests_without_credentials_are_refused(sandbox: SandboxX) -> None:
    response = requests.get(f"{sandbox.base_url}/2/users/me")

    assert response.status_code == 401
    assert response.json() == {"title": "Unauthorized", "detail": "Unauthorized", "type": "about:blank", "status": 401}


@pytest.mark.parametrize("max_results", ["4", "101", "ten"])
def test_max_results_outside_5_to_100_is_an_invalid_request(
    sandbox: SandboxX, api: requests.Session, max_results: str
) -> None:
    response = mentions(sandbox, api, max_results=max_results)

    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "https://api.twitter.com/2/problems/invalid-request"
    assert body["errors"] == [
        {
            "parameters": {"max_results": [max_results]},
            "message": f"The `max_results` query parameter value [{max_results}] is not between 5 and 100",
        }
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"tweet.fields": "public_metrics"},
        {"expansions": "geo.place_id"},
        {"exclude": "replies"},
        {"since_id": "abc"},
    ],
)
def test_what_the_sandbox_cannot_render_is_refused_not_ignored(
    sandbox: SandboxX, api: requests.Session, params: dict[str, str]
) -> None:
    response = mentions(sandbox, api, **params)

    assert response.status_code == 400
    assert list(response.json()["errors"][0]["parameters"]) == list(params)


@pytest.mark.parametrize(
    ("body", "parameter", "message"),
    [
        ({"text": "hi", "media": {"media_ids": ["123"]}}, "media.media_ids", "Your media IDs are invalid."),
        ({"text": "x" * 281}, "text", "Your Tweet text is 281 characters, however the limit is 280."),
        ({"text": ""}, "text", "The `text` field is required when `media.media_ids` is absent"),
        ({"text": "hi", "poll": {"options": ["a", "b"]}}, "poll", None),
    ],
)
def test_bad_tweets_are_invalid_requests(
    sandbox: SandboxX, api: requests.Session, body: dict[str, Any], parameter: str, message: str | None
) -> None:
    response = api.post(f"{sandbox.base_url}/2/tweets", json=body)

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert list(error["parameters"]) == [parameter]
    assert message is None or error["message"] == message
    assert sandbox.tweets_by("forgerbot") == []


def test_more_than_four_media_is_an_invalid_request(sandbox: SandboxX, api: requests.Session) -> None:
    ids = [upload(sandbox, api, encoded_image(8, 8, seed=n)).json()["data"]["id"] for n in range(5)]

    response = api.post(f"{sandbox.base_url}/2/tweets", json={"text": "five", "media": {"media_ids": ids}})

    assert response.status_code == 400
    assert response.json()["errors"][0]["parameters"] == {"media.media_ids": ids}


def test_replying_to_a_deleted_tweet_is_forbidden(sandbox: SandboxX, api: requests.Session) -> None:
    mention = sandbox.post("alice", "@forgerbot never mind")
    sandbox.delete(mention)

    response = api.post(
        f"{sandbox.base_url}/2/tweets", json={"text": "too late", "reply": {"in_reply_to_tweet_id": mention}}
    )

    assert response.status_code == 403
    assert response.json() == {
        "title": "Forbidden",
        "detail": "You attempted to reply to a Tweet that is deleted or not visible to you.",
        "type": "about:blank",
        "status": 403,
    }
    assert mentions(sandbox, api).json() == {"meta": {"result_count": 0}}


def test_uploading_bytes_that_are_not_an_image_is_an_invalid_request(sandbox: SandboxX, api: requests.Session) -> None:
    response = upload(sandbox, api, b"<html>not a picture</html>")

    assert response.status_code == 400
    assert list(response.json()["errors"][0]["parameters"]) == ["media"]


def test_unknown_routes_and_users_are_not_found(sandbox: SandboxX, api: requests.Session) -> None:
    route = api.get(f"{sandbox.base_url}/2/tweets/search/recent")
    user = api.get(f"{sandbox.base_url}/2/users/42/mentions")

    assert route.status_code == 404
    assert route.json()["title"] == "Not Found"
    assert user.status_code == 200
    assert user.json()["errors"][0]["type"] == "https://api.twitter.com/2/problems/resource-not-found"


def test_rate_limit_headers_count_down_per_endpoint_then_429(api: requests.Session) -> None:
    with SandboxX(rate_limits={"GET /2/users/:id/mentions": 2}) as x:
        url = f"{x.base_url}/2/users/{x.bot_user_id}/mentions"
        answers = [api.get(url) for _ in range(3)]
        other = api.get(f"{x.base_url}/2/users/me")

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["x-rate-limit-remaining"] for a in answers] == ["1", "0", "0"]
    assert {a.headers["x-rate-limit-limit"] for a in answers} == {"2"}
    reset = int(answers[0].headers["x-rate-limit-reset"])
    assert time.time() + 899 <= reset <= time.time() + 901
    assert answers[2].headers["x-rate-limit-reset"] == str(reset)
    assert answers[2].json() == {
        "title": "Too Many Requests",
        "detail": "Too Many Requests",
        "type": "about:blank",
        "status": 429,
    }
    assert other.headers["x-rate-limit-limit"] == str(DEFAULT_RATE_LIMITS["GET /2/users/me"])
    assert other.headers["x-rate-limit-remaining"] == str(DEFAULT_RATE_LIMITS["GET /2/users/me"] - 1)


def test_unknown_rate_limit_keys_are_named() -> None:
    with pytest.raises(ValueError, match="GET /2/tweets/search/recent"):
        SandboxX(rate_limits={"GET /2/tweets/search/recent": 1})


def test_control_api(sandbox: SandboxX) -> None:
    alice = sandbox.add_user("alice", "Alice A.")
    first = sandbox.post("Alice", "one")
    second = sandbox.post("alice", "two", in_reply_to=first)

    assert sandbox.add_user("ALICE") == alice
    assert [t.text for t in sandbox.tweets_by("alice")] == ["one", "two"]
    assert int(first) < int(second)
    assert sandbox.replies_to(first)[0].conversation_id == first
    with pytest.raises(ValueError, match="cannot decode"):
        sandbox.post("alice", "broken", images=[b"GIF89a but not really"])
    with pytest.raises(LookupError):
        sandbox.media("3_1")
    assert sandbox.requests_log == []  # all of it in-process, nothing over HTTP


class SandboxSession(requests.Session):
    """Points tweepy's hard-coded api.twitter.com at the sandbox, as the production gateway does."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        url = str(url).replace("https://api.twitter.com", self.base_url, 1)
        return super().request(str(method), url, *args, **kwargs)


def test_tweepy_client_with_oauth1_works_unchanged(sandbox: SandboxX) -> None:
    keys = {
        "consumer_key": "key",
        "consumer_secret": "secret",
        "access_token": "token",
        "access_token_secret": "t-secret",
    }
    client = tweepy.Client(**keys)
    client.session = SandboxSession(sandbox.base_url)
    mention = sandbox.post("alice", "@forgerbot please", images=[encoded_image(seed=6), encoded_image(seed=7)])
    photo_urls = [sandbox.media(key).url for key in sandbox.tweets_by("alice")[0].media_keys]

    me = client.get_me(user_auth=True)
    found = client.get_users_mentions(
        me.data.id,
        user_auth=True,
        max_results=5,
        expansions=["attachments.media_keys", "author_id"],
        media_fields=["url", "width", "height"],
        user_fields=["username"],
    )
    # The media upload is the gateway's own call, signed by tweepy's OAuth 1.0a handler.
    auth = tweepy.OAuth1UserHandler(*keys.values()).apply_auth()
    uploaded = client.session.post(
        "https://api.twitter.com/2/media/upload",
        files={"media": ("painting.jpg", encoded_image(seed=8), "image/jpeg")},
        data={"media_category": "tweet_image"},
        auth=auth,
    )
    created = client.create_tweet(
        text="@alice done", in_reply_to_tweet_id=mention, media_ids=[uploaded.json()["data"]["id"]], user_auth=True
    )
    sandbox.delete(mention)
    with pytest.raises(tweepy.Forbidden, match="deleted or not visible"):
        client.create_tweet(text="again", in_reply_to_tweet_id=mention, user_auth=True)

    assert (str(me.data.id), me.data.username) == (sandbox.bot_user_id, "forgerbot")  # tweepy makes ids ints
    assert [t.id for t in found.data] == [int(mention)]
    assert found.includes["users"][0].username == "alice"
    assert [m.url for m in found.includes["media"]] == photo_urls
    assert [t.id for t in sandbox.replies_to(mention)] == [created.data["id"]]
    assert sandbox.requests_log[:3] == [
        ("GET", "/2/users/me"),
        ("GET", f"/2/users/{sandbox.bot_user_id}/mentions"),
        ("POST", "/2/media/upload"),
    ]
