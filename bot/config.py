"""Forger's configuration: read once at the edge into a frozen, validated object.

Every key of ``config.yaml`` must be present and of the expected kind; a wrong one stops the
program with a message naming the key. Secrets come only from the environment.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar, get_type_hints

import yaml

from bot.errors import ConfigError
from model.settings import RenderSettings, parse_strength
from storage.db import without_password

T = TypeVar("T")

# A check returns None when the value is fine, else what was expected.
Check = Callable[[Any], str | None]


def _between(low: float, high: float) -> Check:
    return lambda v: None if low <= v <= high else f"a number from {low:g} to {high:g}"


def _positive(v: Any) -> str | None:
    return None if v > 0 else "a positive number"


def _handle(v: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z0-9_]{1,15}", v) else "an X username: 1-15 letters, digits or _, no @"


def _http_url(v: str) -> str | None:
    return None if re.match(r"https?://[^/\s]+", v) else "an http(s) URL such as https://api.x.com"


def _db_url(v: str) -> str | None:
    return None if re.match(r"[a-z0-9+]+://", v) else "an SQLAlchemy URL such as sqlite:///data/forger.sqlite3"


def _checked(check: Check) -> Any:
    return field(metadata={"check": check})


def _anything(v: Any) -> str | None:
    return None  # the type check is all there is (a flag, a list of folders)


def _name(v: str) -> str | None:
    return None if re.fullmatch(r"[a-z][a-z0-9_]*", v) else "a platform's name, such as x"


@dataclass(frozen=True)
class BotSettings:
    platform: str = _checked(_name)
    handle: str = _checked(_handle)
    poll_interval_s: float = _checked(_positive)
    page_size: int = _checked(_between(5, 100))
    max_attempts: int = _checked(_between(1, 100))
    poll_overlap_s: float = _checked(_between(0, 86400))
    first_start_max_age_s: float = _checked(_between(0, 30 * 86400))
    refusal_period_s: float = _checked(_between(0, 30 * 86400))
    min_photo_side: int = _checked(_between(1, 4096))
    acknowledge: bool = _checked(_anything)


@dataclass(frozen=True)
class XSettings:
    api_base_url: str = _checked(_http_url)
    timeout_s: float = _checked(_positive)
    upload_chunk_bytes: int = _checked(_between(64 * 1024, 5 * 1024 * 1024))
    made_with_ai: bool = _checked(_anything)


def _host_names(v: tuple[str, ...]) -> str | None:
    ok = v and all(re.fullmatch(r"[A-Za-z0-9.-]+", h) for h in v)
    return None if ok else "a list of host names such as [pbs.twimg.com]"


@dataclass(frozen=True)
class MediaSettings:
    hosts: tuple[str, ...] = _checked(_host_names)
    max_bytes: int = _checked(_between(1024, 100 * 1024 * 1024))
    time_limit_s: float = _checked(_positive)
    max_pixels: int = _checked(_between(1, 178_956_970))


@dataclass(frozen=True)
class GallerySettings:
    extra_dirs: tuple[str, ...] = _checked(_anything)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = _checked(_db_url)


@dataclass(frozen=True)
class RenderConfig:
    """The render section: any of ``RenderSettings``' fields (the rest keep their defaults),
    plus where the network's weights are (``weights_path`` and its ``weights_sha256``; empty for
    the network's own file)."""

    settings: RenderSettings
    weights_path: str | None = None
    weights_sha256: str | None = None

    @classmethod
    def parse(cls, raw: Any, source: str, prefix: str) -> RenderConfig:
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: {prefix.rstrip('.')} must be a mapping of keys, got: {raw!r}")
        fields = {f.name for f in dataclasses.fields(RenderSettings)}
        extra = {"weights_path", "weights_sha256"}
        unknown = sorted(set(raw) - fields - extra)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key {prefix}{unknown[0]} (known: {', '.join(sorted(fields | extra))})"
            )
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in fields}
        try:
            if "strength" in values:
                values["strength"] = parse_strength(values["strength"])
            settings = RenderSettings(**values)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{source}: {prefix}{exc}") from exc
        paths = {}
        for key in extra:
            value = raw.get(key)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"{source}: {prefix}{key} must be a string or empty, got: {value!r}")
            paths[key] = value
        if paths["weights_path"] and not paths["weights_sha256"]:
            raise ConfigError(f"{source}: {prefix}weights_sha256 must be given with weights_path")
        return cls(settings, paths["weights_path"], paths["weights_sha256"])


@dataclass(frozen=True)
class QueueSettings:
    lease_s: float = _checked(_between(5, 3600))
    per_user_per_day: int = _checked(_between(0, 10000))
    queue_limit: int = _checked(_between(1, 1_000_000))


def _fraction(v: float) -> str | None:
    return None if 0 <= v <= 1 else "a fraction from 0 to 1"


def _price(v: float) -> str | None:
    return None if v >= 0 else "a price in USD, 0 or more"


@dataclass(frozen=True)
class Prices:
    mention_read: float = _checked(_price)
    post: float = _checked(_price)
    reply: float = _checked(_price)
    media_upload: float = _checked(_price)


@dataclass(frozen=True)
class BudgetSettings:
    prices_usd: Prices
    monthly_usd: float = _checked(_price)
    optional_until: float = _checked(_fraction)
    new_work_until: float = _checked(_fraction)


@dataclass(frozen=True)
class PathSettings:
    data_dir: Path


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


def _admin_hosts(v: tuple[str, ...]) -> str | None:
    ok = v and all(re.fullmatch(r"\.?[A-Za-z0-9.-]+|[0-9A-Fa-f:]+", h) for h in v)
    return None if ok else "a list of host names or addresses such as [127.0.0.1, localhost, ::1]"


@dataclass(frozen=True)
class AdminConfig:
    """The admin pages (``bot.web.admin``): who they answer to, and whether a proxy stands in front."""

    allowed_hosts: tuple[str, ...] = _checked(_admin_hosts)
    behind_proxy: bool = _checked(_anything)
    session_lifetime_s: int = _checked(_between(60, 30 * 86400))


@dataclass(frozen=True)
class Config:
    bot: BotSettings
    x: XSettings
    database: DatabaseSettings
    queue: QueueSettings
    budget: BudgetSettings
    media: MediaSettings
    gallery: GallerySettings
    render: RenderConfig
    paths: PathSettings
    admin: AdminConfig

    def replace(self, **sections: Any) -> Config:
        """A copy with some sections replaced (the demo points X and the database elsewhere)."""
        return dataclasses.replace(self, **sections)


# Where a database URL with a password comes from: the environment, never the file. Heroku's
# PostgreSQL sets DATABASE_URL.
DATABASE_URL_VARIABLES = ("FORGER_DATABASE_URL", "DATABASE_URL")


def load_config(path: Path | str, env: Mapping[str, str] = os.environ) -> Config:
    """Read and validate ``path``; raise ConfigError naming the file and key on any problem.

    ``database.url`` is taken from $FORGER_DATABASE_URL or $DATABASE_URL where one is set.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such configuration file") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    config = parse_config(raw, source=str(path))
    for variable in DATABASE_URL_VARIABLES:
        if env.get(variable):
            url = _coerce(env[variable], str, _db_url, f"${variable}", "its value")
            return config.replace(database=DatabaseSettings(url=url))
    return config


def parse_config(raw: Any, *, source: str = "config") -> Config:
    """Validate an already-parsed mapping (as ``yaml.safe_load`` returns) into a Config."""
    return _build(Config, raw, source, "")


def _build(cls: type[T], raw: Any, source: str, prefix: str) -> T:
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {where} must be a mapping of keys, got: {raw!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key {prefix}{unknown[0]} (known: {', '.join(fields)})")
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        key = prefix + name
        if name not in raw:
            raise ConfigError(f"{source}: missing key {key}")
        kind = hints[name]
        if kind is RenderConfig:
            values[name] = RenderConfig.parse(raw[name], source, key + ".")
        elif isinstance(kind, type) and dataclasses.is_dataclass(kind):
            values[name] = _build(kind, raw[name], source, key + ".")
        else:
            values[name] = _coerce(raw[name], kind, spec.metadata.get("check"), source, key)
    return cls(**values)


def _coerce(value: Any, kind: Any, check: Check | None, source: str, key: str) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be true or false, got: {value!r}")
        return value
    if kind == tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{source}: {key} must be a list of strings, got: {value!r}")
        value = tuple(value)
        problem = check(value) if check else None
        if problem:
            raise ConfigError(f"{source}: {key} must be {problem}, got: {list(value)!r}")
        return value
    expected = {int: "a whole number", float: "a number", str: "a string", Path: "a path"}[kind]
    if value == "" and kind in (str, Path):
        expected = "given (it is empty)"
    ok = (
        (kind is int and isinstance(value, int) and not isinstance(value, bool))
        or (kind is float and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))
        or (kind in (str, Path) and isinstance(value, str) and value != "")
    )
    # A value quoted back never shows a password (database.url's user:password@).
    shown = repr(without_password(value)) if isinstance(value, str) else repr(value)
    if not ok:
        raise ConfigError(f"{source}: {key} must be {expected}, got: {shown}")
    value = kind(value)
    problem = check(value) if check else None
    if problem:
        raise ConfigError(f"{source}: {key} must be {problem}, got: {shown}")
    return value


def default_config_path(env: Mapping[str, str] = os.environ) -> Path:
    """$FORGER_CONFIG if set, else ./config.yaml."""
    return Path(env.get("FORGER_CONFIG", "config.yaml"))
