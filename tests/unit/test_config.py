from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import load_config, parse_config
from bot.x.settings import XCredentials
from bot.errors import ConfigError
from storage.db import open_engine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def raw() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_shipped_config_loads() -> None:
    config = load_config(ROOT / "config.yaml")
    assert config.bot.platforms == ("x",) and config.section("x").handle == "forgerbot"
    assert config.render.settings.size == 512
    assert config.render.settings.iterations == (45, 10)
    assert config.render.weights_path is None
    assert config.database.url.startswith("sqlite:///")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["x"].pop("handle"), "missing key x.handle"),
        (lambda r: r.pop("x"), "missing key x (bot.platforms names x, which needs its section)"),
        (lambda r: r["bot"].update(platforms=["x", "mastodon"]), "bot.platforms must be a list of platforms, each one of: bluesky, memory, x"),
        (lambda r: r["bot"].update(platforms=[]), "bot.platforms must be a list of platforms, each one of: bluesky, memory, x, got: []"),
        (lambda r: r.update(memory={"handle": "a"}), "platform memory has no settings: remove its memory: section"),
        (lambda r: r.update(budget={}), "unknown key budget (known: bot, database, queue, media, gallery, render, retention, web, paths, admin, bluesky, memory, x)"),
        (lambda r: r.pop("render"), "missing key render"),
        (lambda r: r["render"].update(size="big"), "render.size must be a whole number, got: 'big'"),
        (lambda r: r["render"].update(size=True), "render.size must be a whole number, got: True"),
        (lambda r: r["render"].update(size=0), "render.size must be positive, got: 0"),
        (lambda r: r["render"].update(iterations=[5]), "render.iterations must give one number per scale"),
        (lambda r: r["render"].update(strength="extreme"), "render.strength must be low, normal, high or a positive number"),
        (lambda r: r["render"].update(colours="sepia"), "render.colours must be one of painting, luminance"),
        (lambda r: r["render"].update(weights_path="/w.h5"), "render.weights_sha256 must be given with weights_path"),
        (lambda r: r["x"].update(handle="@forger"), "x.handle must be an X username"),
        (lambda r: r["bot"].update(poll_interval_s=0), "bot.poll_interval_s must be a positive number, got: 0"),
        (lambda r: r["bot"].update(page_size=500), "bot.page_size must be a number from 5 to 100, got: 500"),
        (lambda r: r["x"].update(api_base_url="api.x.com"), "x.api_base_url must be an http(s) URL"),
        (lambda r: r["database"].update(url=""), "database.url must be given (it is empty), got: ''"),
        (lambda r: r["bot"].update(poll_interval_s=float("inf")), "bot.poll_interval_s must be a number, got: inf"),
        (lambda r: r["x"]["budget"].update(monthly_usd=float("nan")), "x.budget.monthly_usd must be a number, got: nan"),
        (lambda r: r["render"].update(colour=1), "unknown key render.colour"),
        (lambda r: r.update(render=[1]), "render must be a mapping of keys"),
    ],
)
def test_config_errors_name_the_key(raw: dict[str, Any], change: Any, message: str) -> None:
    broken = copy.deepcopy(raw)
    change(broken)
    with pytest.raises(ConfigError, match="^config.yaml: " + re.escape(message)):
        parse_config(broken, source="config.yaml")


def test_missing_or_malformed_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("bot: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_a_database_url_in_the_environment_replaces_the_files(tmp_path: Path) -> None:
    heroku = {"DATABASE_URL": "postgres://forger:secret@db.example:5432/forger"}

    assert load_config(ROOT / "config.yaml", env=heroku).database.url == heroku["DATABASE_URL"]
    assert load_config(ROOT / "config.yaml", env={**heroku, "FORGER_DATABASE_URL": "sqlite:///x.db"}).database.url == (
        "sqlite:///x.db"
    )
    with pytest.raises(ConfigError, match=r"^\$DATABASE_URL: its value must be an SQLAlchemy URL.*'db.example'"):
        load_config(ROOT / "config.yaml", env={"DATABASE_URL": "db.example"})
    # Heroku's scheme, and a bare postgresql://, are opened with Forger's driver (psycopg 3).
    for url in (heroku["DATABASE_URL"], "postgresql://forger@db.example/forger"):
        engine = open_engine(url)
        assert engine.url.drivername == "postgresql+psycopg"
        engine.dispose()


def test_credentials_come_from_the_environment() -> None:
    env = {"X_API_KEY": "k", "X_API_SECRET": "s", "X_ACCESS_TOKEN": "t", "X_ACCESS_TOKEN_SECRET": "ts"}
    creds = XCredentials.from_env(env)
    assert (creds.api_key, creds.access_token_secret, creds.bearer_token) == ("k", "ts", None)
    assert "ts" not in repr(creds)
    with pytest.raises(ConfigError, match="X_ACCESS_TOKEN, X_ACCESS_TOKEN_SECRET"):
        XCredentials.from_env({"X_API_KEY": "k", "X_API_SECRET": "s"})
