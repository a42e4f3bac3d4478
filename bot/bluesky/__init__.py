"""Bluesky (the AT Protocol's social app), behind the core's ``Platform`` protocol.

- ``client``: ``BlueskyClient``, XRPC over HTTP to the bot's PDS, its session kept and renewed;
- ``identity``: a DID resolved to the PDS that keeps its photos;
- ``parsing``: records and views into the core's ``Post`` and ``Media``;
- ``richtext``: the 300-grapheme limit and mention facets;
- ``settings``: the ``bluesky:`` section of config.yaml and the app password from the environment;
- ``ledger``: every call and the PDS's rate-limit windows, kept in ``storage.ledger``;
- ``platform``: ``BlueskyPlatform``, the adapter the core talks to, translating the errors.

The tests run it against a real AT Protocol network on loopback (``tests/bluesky``). The core
imports nothing from here: ``bot.platforms`` names this package, and ``create`` is its factory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from bot.bluesky.platform import BlueskyPlatform
    from bot.config import Config


def create(config: Config, sessions: sessionmaker[Session], env: Mapping[str, str]) -> BlueskyPlatform:
    """The bot's Bluesky account, as the ``bluesky:`` section and ``$BLUESKY_APP_PASSWORD`` say,
    its calls kept in the ledger of ``sessions``' database."""
    from bot.bluesky.client import BlueskyClient
    from bot.bluesky.identity import Resolver
    from bot.bluesky.ledger import Ledger
    from bot.bluesky.platform import BlueskyPlatform
    from bot.bluesky.settings import BlueskyCredentials, BlueskySettings

    settings: BlueskySettings = config.section("bluesky")
    credentials = BlueskyCredentials.from_env(env)
    ledger = Ledger(sessions, platform=BlueskyPlatform.name)
    client = BlueskyClient(settings.service_url, identifier=settings.handle, password=credentials.app_password,
                           timeout_s=settings.timeout_s, ledger=ledger)
    resolver = Resolver(settings.plc_url, timeout_s=settings.timeout_s)
    return BlueskyPlatform(client, resolver, handle=settings.handle, ledger=ledger)
