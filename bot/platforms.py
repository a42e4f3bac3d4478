"""The platforms Forger runs on, by the name ``bot.platforms`` gives them in config.yaml.

One line per platform: its name (also what the database's rows say), the module whose
``create(config, sessions, env)`` builds it, and the class of its config section (the top-level
key of its name), if it has one. Modules are imported only when chosen, so the core never imports
a platform, and a platform's dependencies are loaded only where it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from bot.config import Config
    from bot.platform import Platform

    Factory = Callable[[Config, sessionmaker[Session], Mapping[str, str]], Platform]


@dataclass(frozen=True)
class Entry:
    module: str  # has ``create(config, sessions, env)``
    settings: str | None = None  # "module:Class" of its config section; None: it has none


PLATFORMS: dict[str, Entry] = {
    "x": Entry("bot.x", "bot.x.settings:XSettings"),
    "bluesky": Entry("bot.bluesky", "bot.bluesky.settings:BlueskySettings"),
    "memory": Entry("bot.memory"),
}


def settings_class(name: str) -> type[Any] | None:
    """The class of platform ``name``'s config section, or None if it takes none."""
    entry = PLATFORMS[name]
    if entry.settings is None:
        return None
    module, _, attribute = entry.settings.partition(":")
    found: type[Any] = getattr(importlib.import_module(module), attribute)
    return found


def factory(name: str) -> Factory:
    """The factory of platform ``name``; a ConfigError naming ``bot.platforms`` if there is none."""
    if name not in PLATFORMS:
        raise ConfigError(f"bot.platforms may list {', '.join(sorted(PLATFORMS))}, got: {name!r}")
    create: Factory = importlib.import_module(PLATFORMS[name].module).create
    return create


def create_all(config: Config, sessions: sessionmaker[Session], env: Mapping[str, str]) -> dict[str, Platform]:
    """Every platform ``config`` turns on, by name, their secrets read from ``env``."""
    return {name: factory(name)(config, sessions, env) for name in config.bot.platforms}


def budgets_usd(config: Config) -> dict[str, float]:
    """Each platform's monthly budget in USD, for those that bill (their section has a budget)."""
    found = {}
    for name, section in config.platform_sections.items():
        budget = getattr(section, "budget", None)
        if budget is not None and name in config.bot.platforms:
            found[name] = float(budget.monthly_usd)
    return found
