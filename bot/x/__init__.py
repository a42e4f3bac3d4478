"""X (the platform once called Twitter), behind the core's ``Platform`` protocol.

- ``client``: ``XClient``, every call to the X API v2 (tweepy's OAuth 1.0a, rate-limit headers,
  X's problem objects read into ``bot.x.errors``);
- ``parsing``: X's JSON into the core's ``Post`` and ``Media``;
- ``dialect``: X's old and new names (tweets, posts), and which one X takes, kept in the database;
- ``snowflake``: X's ids as moments, what the mentions cursor reads on from;
- ``settings``: the ``x:`` section of config.yaml and the X keys from the environment;
- ``ledger``: X's prices and the budget, kept in ``storage.ledger`` for all of the bot's processes;
- ``platform``: ``XPlatform``, the adapter the core talks to, translating X's errors;
- ``sandbox``: a sandbox X on loopback, for the tests and ``forger demo``.

The core imports nothing from here: ``bot.platforms`` names this package, and ``create`` is its
factory.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from bot.config import Config
    from bot.x.platform import XPlatform

log = logging.getLogger(__name__)


def _admin_alert(message: str) -> None:
    """What the person running the bot must hear of (budget, usage caps): an error in the log."""
    log.error("ADMIN: %s", message)


def create(config: Config, sessions: sessionmaker[Session], env: Mapping[str, str]) -> XPlatform:
    """The bot's X account, as the ``x:`` section and the credentials in ``env`` say, its calls
    kept in the ledger of ``sessions``' database. (Imported here: reading the settings needs none
    of the client's dependencies.)"""
    from bot.x.client import XClient
    from bot.x.dialect import DialectMemory
    from bot.x.ledger import Ledger
    from bot.x.platform import XPlatform
    from bot.x.settings import XCredentials, XSettings

    settings: XSettings = config.section("x")
    client = XClient(
        XCredentials.from_env(env), base_url=settings.api_base_url, timeout_s=settings.timeout_s,
        upload_chunk_bytes=settings.upload_chunk_bytes, made_with_ai=settings.made_with_ai,
        ledger=Ledger(sessions, settings.budget, platform=XPlatform.name, alert=_admin_alert),
        dialects=DialectMemory(sessions, platform=XPlatform.name),
    )
    return XPlatform(client, media_hosts=settings.media_hosts, handle=settings.handle)
