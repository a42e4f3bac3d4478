"""The platforms Forger runs on, by the name ``bot.platform`` gives them in config.yaml.

One line per platform: its name (also what the database's rows say) and the module whose
``create(config, sessions, env)`` builds it. Modules are imported only when chosen, so the core
never imports a platform, and a platform's dependencies are loaded only where it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

from sqlalchemy.orm import Session, sessionmaker

from bot.config import Config
from bot.errors import ConfigError
from bot.platform import Platform

Factory = Callable[[Config, sessionmaker[Session], Mapping[str, str]], Platform]

MODULES: dict[str, str] = {
    "x": "bot.x",
    "memory": "bot.memory",
}


def factory(name: str) -> Factory:
    """The factory of platform ``name``; a ConfigError naming ``bot.platform`` if there is none."""
    if name not in MODULES:
        raise ConfigError(f"bot.platform must be one of {', '.join(sorted(MODULES))}, got: {name!r}")
    create: Factory = importlib.import_module(MODULES[name]).create
    return create


def create(config: Config, sessions: sessionmaker[Session], env: Mapping[str, str]) -> Platform:
    """The platform ``config`` names, its secrets read from ``env``."""
    return factory(config.bot.platform)(config, sessions, env)
