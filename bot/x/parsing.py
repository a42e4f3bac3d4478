"""X's JSON, read into the core's types: a page of tweets (with its ``includes``) as ``Post``s.

Both of X's dialects (``bot.x.dialect``) are read: links to other posts under ``referenced_tweets``
or ``referenced_posts``, the posts they link to in ``includes.tweets`` or ``includes.posts``.
"""

from __future__ import annotations

import html

from datetime import datetime
from typing import Any

from bot.platform import Media, Post


def parse_tweets(body: dict[str, Any]) -> list[Post]:
    """The tweets of one answer (``data`` a list, an object, or absent when empty), as Posts."""
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
    referenced = {t["id"]: t for t in [*includes.get("tweets", []), *includes.get("posts", [])]}
    data = body.get("data", [])
    tweets = []
    for tweet in [data] if isinstance(data, dict) else data:
        keys = tweet.get("attachments", {}).get("media_keys", [])
        references = [*tweet.get("referenced_tweets", []), *tweet.get("referenced_posts", [])]
        links = {r.get("type"): str(r.get("id")) for r in references if isinstance(r, dict)}
        parent = links.get("replied_to")
        created = tweet.get("created_at")
        author_id = str(tweet.get("author_id", ""))
        tweets.append(
            Post(
                id=str(tweet["id"]),
                text=html.unescape(tweet.get("text", "")),  # X escapes &, < and > in texts
                author_id=author_id,
                author_username=users.get(author_id, author_id),
                created_at=datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None,
                media=tuple(media_by_key[k] for k in keys if k in media_by_key),
                is_repost="retweeted" in links,
                in_reply_to_id=parent,
                parent_media_keys=tuple(referenced.get(parent, {}).get("attachments", {}).get("media_keys", [])),
            )
        )
    return tweets
