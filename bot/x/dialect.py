"""X's two dialects of its API v2, and which one the bot speaks (kept in the database).

X renamed tweets to posts in its API (OpenAPI spec v2.167, 2026-08): the field parameter
``tweet.fields`` became ``post.fields`` (whose list has neither ``author_id`` nor
``referenced_tweets``: the author comes with the ``author_id`` expansion), the expansion
``referenced_tweets.id`` became ``referenced_posts``, Post objects carry ``referenced_posts`` and
``edit_history_post_ids``, referenced posts come in ``includes.posts``, and the one-shot media
upload takes only ``media``, ``media_category`` and ``additional_owners`` (no ``media_type``).

The client speaks ``POSTS`` (the current one) first, and switches on a 400 that blames a name
only the dialect it spoke uses (an X still on the old names refuses the new ones, and the other
way round); the choice is kept with ``DialectMemory`` so that a restart does not ask twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from storage import platform_settings

log = logging.getLogger(__name__)

SETTING = "api_dialect"  # the key under which the choice is kept (``storage.platform_settings``)


@dataclass(frozen=True)
class Dialect:
    """One generation of X's names for what the bot asks and sends."""

    name: str
    fields_param: str  # the query parameter listing a post's fields
    post_fields: tuple[str, ...]  # what the bot asks for in it
    expansions: tuple[str, ...]
    upload_sends_media_type: bool  # whether the one-shot upload names the image's type
    marks: frozenset[str]  # names (parameters or values) of this dialect alone

    def refused(self, parameters: tuple[str, ...], values: tuple[str, ...]) -> bool:
        """Whether a 400 blaming ``parameters`` (and their ``values``) refused this dialect's names."""
        return bool(self.marks & {*parameters, *values})


POSTS = Dialect(
    name="posts",
    fields_param="post.fields",
    post_fields=("created_at", "attachments", "conversation_id"),
    expansions=("attachments.media_keys", "author_id", "referenced_posts"),
    upload_sends_media_type=False,
    marks=frozenset({"post.fields", "referenced_posts", "edit_history_post_ids"}),
)
TWEETS = Dialect(
    name="tweets",
    fields_param="tweet.fields",
    post_fields=("created_at", "author_id", "attachments", "conversation_id", "referenced_tweets"),
    expansions=("attachments.media_keys", "author_id", "referenced_tweets.id"),
    upload_sends_media_type=True,
    marks=frozenset({"tweet.fields", "referenced_tweets", "referenced_tweets.id", "edit_history_tweet_ids",
                     "media_type"}),
)
CURRENT = POSTS
DIALECTS = {dialect.name: dialect for dialect in (POSTS, TWEETS)}


def other(dialect: Dialect) -> Dialect:
    return TWEETS if dialect is POSTS else POSTS


class DialectMemory:
    """The dialect X last took, kept in the database for every process of the bot and restarts."""

    def __init__(self, sessions: sessionmaker[Session], *, platform: str = "x") -> None:
        self.sessions = sessions
        self.platform = platform

    def load(self) -> Dialect | None:
        """The dialect kept, or None when none was (or an unknown name was)."""
        with self.sessions() as session:
            name = platform_settings.get(session, self.platform, SETTING)
        if name is not None and name not in DIALECTS:
            log.warning("unknown X API dialect %r kept in the database; starting from %s", name, CURRENT.name)
        return DIALECTS.get(name or "")

    def save(self, dialect: Dialect) -> None:
        with self.sessions.begin() as session:
            platform_settings.put(session, self.platform, SETTING, dialect.name)
