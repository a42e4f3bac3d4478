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
from typing import Any, TypeVar, get_type_hints

import yaml

from bot.errors import ConfigError
from model.settings import RenderSettings, parse_strength
from storage.db import without_password

T = TypeVar("T")

# A check returns None when the value is fine, else what was expected.
Check = Callable[[Any], str | None]


def between(low: float, high: float) -> Check:
    return lambda v: None if low <= v <= high else f"a number from {low:g} to {high:g}"


def positive(v: Any) -> str | None:
    return None if v > 0 else "a positive number"


def http_url(v: str) -> str | None:
    return None if re.match(r"https?://[^/\s]+", v) else "an http(s) URL such as https://api.x.com"


def _db_url(v: str) -> str | None:
    return None if re.match(r"[a-z0-9+]+://", v) else "an SQLAlchemy URL such as sqlite:///data/forger.sqlite3"


def checked(check: Check) -> Any:
    return field(metadata={"check": check})


def anything(v: Any) -> str | None:
    return None  # the type check is all there is (a flag, a list of folders)


def _platform_names(v: tuple[str, ...]) -> str | None:
    from bot import platforms  # the registry (it imports this module)

    known = sorted(platforms.PLATFORMS)
    ok = v and len(set(v)) == len(v) and all(name in known for name in v)
    return None if ok else f"a list of platforms, each one of: {', '.join(known)}"


@dataclass(frozen=True)
class BotSettings:
    platforms: tuple[str, ...] = checked(_platform_names)
    poll_interval_s: float = checked(positive)
    busy_poll_interval_s: float = checked(positive)
    page_size: int = checked(between(5, 100))
    max_attempts: int = checked(between(1, 100))
    deliver_for_s: float = checked(between(0, 30 * 86400))
    poll_overlap_s: float = checked(between(0, 86400))
    first_start_max_age_s: float = checked(between(0, 30 * 86400))
    refusal_period_s: float = checked(between(0, 30 * 86400))
    min_photo_side: int = checked(between(1, 4096))
    max_aspect_ratio: float = checked(between(1, 100))
    acknowledge: bool = checked(anything)


@dataclass(frozen=True)
class MediaSettings:
    max_bytes: int = checked(between(1024, 100 * 1024 * 1024))
    time_limit_s: float = checked(positive)
    max_pixels: int = checked(between(1, 178_956_970))


@dataclass(frozen=True)
class GallerySettings:
    extra_dirs: tuple[str, ...] = checked(anything)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = checked(_db_url)


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
    lease_s: float = checked(between(5, 3600))
    per_user_per_day: int = checked(between(0, 10000))
    queue_limit: int = checked(between(1, 1_000_000))


def fraction(v: float) -> str | None:
    return None if 0 <= v <= 1 else "a fraction from 0 to 1"


def price(v: float) -> str | None:
    return None if v >= 0 else "a price in USD, 0 or more"


@dataclass(frozen=True)
class RetentionSettings:
    images_days: float = checked(between(0.01, 3650))
    rollup_days: float = checked(between(1, 3650))


@dataclass(frozen=True)
class WebSettings:
    """The public page and API (``forger web``)."""

    max_upload_bytes: int = checked(between(64 * 1024, 100 * 1024 * 1024))
    max_size_px: int = checked(between(32, 4096))
    default_size_px: int = checked(between(32, 4096))
    anonymous_per_day: int = checked(between(0, 10000))
    requests_per_minute: int = checked(between(0, 100_000))
    trust_proxy: bool = checked(anything)
    workers: int = checked(between(1, 64))


@dataclass(frozen=True)
class PathSettings:
    data_dir: Path


def _admin_hosts(v: tuple[str, ...]) -> str | None:
    ok = v and all(re.fullmatch(r"\.?[A-Za-z0-9.-]+|[0-9A-Fa-f:]+", h) for h in v)
    return None if ok else "a list of host names or addresses such as [127.0.0.1, localhost, ::1]"


@dataclass(frozen=True)
class AdminConfig:
    """The admin pages (``bot.web.admin``): the host names they answer to, how long a login lasts.
    (Whether a proxy stands in front is ``web.trust_proxy``, for the whole app.)"""

    allowed_hosts: tuple[str, ...] = checked(_admin_hosts)
    session_lifetime_s: int = checked(between(60, 30 * 86400))


@dataclass(frozen=True)
class Config:
    bot: BotSettings
    database: DatabaseSettings
    queue: QueueSettings
    media: MediaSettings
    gallery: GallerySettings
    render: RenderConfig
    retention: RetentionSettings
    web: WebSettings
    paths: PathSettings
    admin: AdminConfig
    # Each platform's own section (``x:``…), by the platform's name, parsed by the settings class
    # the registry (``bot.platforms``) names; only that platform reads it.
    platform_sections: Mapping[str, Any] = field(default_factory=dict)

    def replace(self, **sections: Any) -> Config:
        """A copy with some sections replaced (the demo points the database elsewhere)."""
        return dataclasses.replace(self, **sections)

    def section(self, platform: str) -> Any:
        """Platform ``platform``'s settings; a ConfigError if the file has no section for it."""
        try:
            return self.platform_sections[platform]
        except KeyError:
            raise ConfigError(f"the configuration has no {platform}: section (platform {platform} needs one)") from None

    def with_section(self, platform: str, **changes: Any) -> Config:
        """A copy with some of ``platform``'s settings changed (the demo points X at its sandbox)."""
        changed = dataclasses.replace(self.section(platform), **changes)
        return dataclasses.replace(self, platform_sections={**self.platform_sections, platform: changed})


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
    """Validate an already-parsed mapping (as ``yaml.safe_load`` returns) into a Config.

    A top-level key named after a platform is that platform's section, parsed by its settings
    class; every platform ``bot.platforms`` lists that has a settings class must have one.
    """
    from bot import platforms  # the registry (it imports this module)

    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got: {raw!r}")
    core = {k: v for k, v in raw.items() if k not in platforms.PLATFORMS}
    config = _build(Config, core, source, "")
    sections = {}
    for name, value in raw.items():
        kind = platforms.settings_class(name) if name in platforms.PLATFORMS else None
        if name in platforms.PLATFORMS:
            if kind is None:
                raise ConfigError(f"{source}: platform {name} has no settings: remove its {name}: section")
            sections[name] = _build(kind, value, source, name + ".")
    for name in config.bot.platforms:
        if platforms.settings_class(name) is not None and name not in sections:
            raise ConfigError(f"{source}: missing key {name} (bot.platforms names {name}, which needs its section)")
    return config.replace(platform_sections=sections)


def _build(cls: type[T], raw: Any, source: str, prefix: str) -> T:
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {where} must be a mapping of keys, got: {raw!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "platform_sections"}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        known = list(fields)
        if cls is Config:
            from bot import platforms

            known += sorted(platforms.PLATFORMS)
        raise ConfigError(f"{source}: unknown key {prefix}{unknown[0]} (known: {', '.join(known)})")
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
    return cls(**values)  # type: ignore[call-arg]


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
