"""Bluesky's section of config.yaml (``bluesky:``) and the bot's app password from the environment.

Parsed by ``bot.config`` like every other section; only this package reads it. Bluesky bills
nothing, so unlike X's this section has no budget: only the PDS's rate limits bound the bot.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from bot.config import between, checked, http_url
from bot.errors import ConfigError

# A handle is a domain name: labels of letters, digits and hyphens, at least two of them.
_HANDLE = re.compile(r"(?=.{3,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _handle(v: str) -> str | None:
    return None if _HANDLE.fullmatch(v) else "a Bluesky handle such as forger.bsky.social (a domain name, no @)"


@dataclass(frozen=True)
class BlueskySettings:
    handle: str = checked(_handle)
    service_url: str = checked(http_url)  # the bot's PDS (https://bsky.social for most accounts)
    plc_url: str = checked(http_url)  # the DID directory that says where a did:plc's photos are kept
    timeout_s: float = checked(between(0.001, 3600))


@dataclass(frozen=True)
class BlueskyCredentials:
    """The bot's app password (Settings > Privacy and security > App passwords), never its own."""

    app_password: str

    ENV: ClassVar[str] = "BLUESKY_APP_PASSWORD"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BlueskyCredentials:
        password = env.get(cls.ENV)
        if not password:
            raise ConfigError(f"Bluesky credentials missing from the environment: {cls.ENV} "
                              "(set it to an app password of the bot's Bluesky account)")
        return cls(password)

    def __repr__(self) -> str:  # never print secrets into logs
        return "BlueskyCredentials(***)"
