"""X's section of config.yaml (``x:``) and the X keys from the environment.

Parsed by ``bot.config`` like every other section (the checks are its ``_checked`` fields); only
this package reads it. The budget is X's alone: X bills each post it serves and each one made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from bot.config import between, checked, fraction, http_url, price, anything
from bot.errors import ConfigError


def _handle(v: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z0-9_]{1,15}", v) else "an X username: 1-15 letters, digits or _, no @"


def _host_names(v: tuple[str, ...]) -> str | None:
    ok = v and all(re.fullmatch(r"[A-Za-z0-9.-]+", h) for h in v)
    return None if ok else "a list of host names such as [pbs.twimg.com]"


@dataclass(frozen=True)
class Prices:
    mention_read: float = checked(price)
    post: float = checked(price)
    reply: float = checked(price)
    media_upload: float = checked(price)


@dataclass(frozen=True)
class BudgetSettings:
    prices_usd: Prices
    monthly_usd: float = checked(price)
    optional_until: float = checked(fraction)
    new_work_until: float = checked(fraction)
    # The most of the month's budget one author's posts count for towards those two stops.
    author_share: float = checked(fraction)


@dataclass(frozen=True)
class XSettings:
    budget: BudgetSettings
    handle: str = checked(_handle)
    api_base_url: str = checked(http_url)
    timeout_s: float = checked(between(0.001, 3600))
    upload_chunk_bytes: int = checked(between(64 * 1024, 5 * 1024 * 1024))
    made_with_ai: bool = checked(anything)
    media_hosts: tuple[str, ...] = checked(_host_names)


@dataclass(frozen=True)
class XCredentials:
    """OAuth 1.0a user-context keys of the bot's account (and an optional app bearer token)."""

    api_key: str
    api_secret: str
    access_token: str
    access_token_secret: str
    bearer_token: str | None = None

    ENV: ClassVar[dict[str, str]] = {
        "api_key": "X_API_KEY",
        "api_secret": "X_API_SECRET",
        "access_token": "X_ACCESS_TOKEN",
        "access_token_secret": "X_ACCESS_TOKEN_SECRET",
    }

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> XCredentials:
        """Read the keys from the environment; a missing one is named in the error."""
        missing = [name for name in cls.ENV.values() if not env.get(name)]
        if missing:
            raise ConfigError(
                "X credentials missing from the environment: " + ", ".join(missing)
                + " (set them to the keys of the bot's X app and account)"
            )
        values = {attr: env[name] for attr, name in cls.ENV.items()}
        return cls(**values, bearer_token=env.get("X_BEARER_TOKEN") or None)

    @classmethod
    def sandbox(cls) -> XCredentials:
        """Placeholder keys for the sandbox X, which accepts any."""
        return cls("sandbox", "sandbox", "sandbox", "sandbox")

    def __repr__(self) -> str:  # never print secrets into logs
        return "XCredentials(***)"
