"""Test configurations, built here rather than from the production config.yaml.

``raw_config`` is a complete configuration as ``yaml.safe_load`` would give it, with settings
that suit tests (an SQLite database in the test's folder, small renders); ``make_config`` parses
it, through the same validation as config.yaml, with any keys changed; ``write_config`` writes it
for a test that runs ``forger`` as a process. ``on_sandbox`` points X at a sandbox X.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bot.config import Config, parse_config

if TYPE_CHECKING:
    from bot.x.sandbox import SandboxX

_BASE: dict[str, Any] = {
    "bot": {
        "platforms": ["x"],
        "poll_interval_s": 1.0,
        "busy_poll_interval_s": 1.0,
        "page_size": 100,
        "max_attempts": 3,
        "deliver_for_s": 21600,
        "poll_overlap_s": 120,
        "first_start_max_age_s": 3600,
        "refusal_period_s": 86400,
        "min_photo_side": 64,
        "max_aspect_ratio": 6,
        "acknowledge": False,
    },
    "x": {
        "handle": "forgerbot",
        "api_base_url": "https://api.x.com",
        "timeout_s": 5.0,
        "upload_chunk_bytes": 1048576,
        "made_with_ai": True,
        "media_hosts": ["pbs.twimg.com"],
        "budget": {
            "monthly_usd": 50.0,
            "optional_until": 0.8,
            "new_work_until": 0.95,
            "author_share": 0.05,
            "prices_usd": {"mention_read": 0.005, "post": 0.015, "reply": 0.015, "media_upload": 0.0},
        },
    },
    "media": {"max_bytes": 16777216, "time_limit_s": 20.0, "max_pixels": 40000000},
    "gallery": {"extra_dirs": []},
    "database": {"url": "sqlite:///forger.sqlite3"},
    "queue": {"lease_s": 120, "per_user_per_day": 5, "queue_limit": 500},
    "render": {"size": 64, "scales": [1.0], "iterations": [2], "faces": "off", "precision": "float32"},
    "retention": {"images_days": 7, "rollup_days": 90},
    "web": {
        "max_upload_bytes": 10485760,
        "max_size_px": 1024,
        "default_size_px": 512,
        "anonymous_per_day": 3,
        "requests_per_minute": 600,
        "trust_proxy": False,
        "workers": 1,
    },
    "admin": {"allowed_hosts": ["127.0.0.1", "localhost", "::1"], "session_lifetime_s": 28800},
    "paths": {"data_dir": "data"},
}


def raw_config(tmp_path: Path | None = None, **changes: Any) -> dict[str, Any]:
    """The test configuration as a mapping; ``changes`` maps a section to the keys changed in it
    (merged into nested mappings, so ``x={"budget": {"monthly_usd": 1}}`` changes only that)."""
    raw = copy.deepcopy(_BASE)
    if tmp_path is not None:
        raw["database"]["url"] = f"sqlite:///{tmp_path / 'forger.sqlite3'}"
        raw["paths"]["data_dir"] = str(tmp_path / "data")
    for section, keys in changes.items():
        _merge(raw.setdefault(section, {}), keys)
    return raw


def make_config(tmp_path: Path | None = None, **changes: Any) -> Config:
    """The test configuration, parsed and validated as config.yaml is."""
    return parse_config(raw_config(tmp_path, **changes), source="test config")


def write_config(path: Path, tmp_path: Path | None = None, **changes: Any) -> Path:
    """The test configuration written to ``path``, for ``forger --config path``."""
    path.write_text(yaml.safe_dump(raw_config(tmp_path, **changes)), encoding="utf-8")
    return path


def on_sandbox(x: SandboxX, **x_changes: Any) -> dict[str, Any]:
    """The ``x`` section's changes that point the bot at sandbox ``x`` (which serves the photos too)."""
    return {"api_base_url": x.base_url, "media_hosts": [x.media_host], **x_changes}


def _merge(into: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
