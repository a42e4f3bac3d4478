"""``forger demo``: the whole bot, end to end, against a sandbox X on loopback.

Seeds three mentions (a photo with a painting, a lone photo, no image), runs the real poller and
worker under the real scheduler on a fresh SQLite database, waits until every mention has been
answered, then prints the conversation and writes every posted image to the output folder.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from rich.console import Console

from bot.app import Forger
from bot.config import Config
from bot.errors import ForgerError
from bot.gallery import BUNDLED
from bot.progress import render_progress
from bot.rendering import NeuralRenderer, QuickRenderer, Renderer
from bot.scheduler import build_scheduler
from bot.x.sandbox import CREDENTIALS_ENV, SandboxX

# The sample photos shipped with the project (public domain or CC0, see samples/SOURCES.md).
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
# The demo's images (a photo, a painting, a lone photo), each from where the project ships it.
NEEDED = {"coffee.jpg": SAMPLES, "starry_night.jpg": BUNDLED, "chelsea.jpg": SAMPLES}
TIMEOUT_S = 600.0


def demo_images(images: Path | None) -> dict[str, Path]:
    """The demo's images by name: each from ``images`` if given, else the shipped one."""
    paths = {name: (images or folder) / name for name, folder in NEEDED.items()}
    missing = [name for name, path in paths.items() if not path.is_file()]
    if missing and images:
        raise ForgerError(f"the demo needs {', '.join(missing)} in {images} (the folder given by --images)")
    if missing:
        lost = ", ".join(str(paths[name]) for name in missing)
        raise ForgerError(f"the demo's sample images are missing: {lost} (reinstall forger, or pass --images DIR)")
    return paths


DEMO_ROOT = Path("demo-output")


def last_database() -> Path:
    """The database of the latest demo run in ``demo-output/`` (``forger admin --demo`` opens it);
    ForgerError if there is none."""
    runs = sorted(DEMO_ROOT.glob("run-*/forger.sqlite3"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise ForgerError(f"no demo has run here yet (none in {DEMO_ROOT}/): `make demo` runs one")
    return runs[-1]


def run_demo(
    config: Config,
    *,
    out: Path | None,
    images: Path | None,
    size: int,
    iterations: tuple[int, ...] | None,
    quick: bool,
    console: Console,
    x_dialect: str = "posts",
) -> Path:
    """Run the demo; returns the output folder. ``x_dialect`` is the names the sandbox X takes."""
    paths = demo_images(images)
    out = out or DEMO_ROOT / datetime.now().strftime("run-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    database = out / "forger.sqlite3"
    database.unlink(missing_ok=True)

    settings = replace(config.render.settings, size=size)
    if iterations:
        settings = replace(settings, iterations=iterations)
    renderer: Renderer = (
        QuickRenderer(size=size)
        if quick
        else NeuralRenderer(settings, config.render.weights_path, config.render.weights_sha256)
    )
    handle = config.section("x").handle
    with SandboxX(bot_username=handle, dialect=x_dialect) as x:
        # X is the sandbox, which serves the photos too.
        config = config.with_section("x", api_base_url=x.base_url, media_hosts=(x.media_host,)).replace(
            database=replace(config.database, url=f"sqlite:///{database}"),
            bot=replace(config.bot, poll_interval_s=1.0, platforms=("x",)),
        )
        console.print(f"sandbox X on {x.base_url}, database {database}")
        photo = lambda name: paths[name].read_bytes()  # noqa: E731
        asked = {
            x.post("alice", f"@{handle} paint my photo like this, please!",
                   images=[photo("coffee.jpg"), photo("starry_night.jpg")]): "alice",
            x.post("bob", f"@{handle} what would this look like?", images=[photo("chelsea.jpg")]): "bob",
            x.post("carol", f"@{handle} hello! what do you do?"): "carol",
        }

        forger = Forger.create(config, CREDENTIALS_ENV, renderer=renderer, upgrade=True)
        scheduler = build_scheduler(forger)
        started = time.monotonic()
        with render_progress("painting", console) as progress:
            forger.progress = progress
            scheduler.start()
            try:
                while not all(x.replies_to(tweet_id) for tweet_id in asked):
                    if time.monotonic() - started > TIMEOUT_S:
                        raise ForgerError(f"the bot did not answer every mention within {TIMEOUT_S:.0f} s")
                    time.sleep(0.2)
            finally:
                scheduler.shutdown(wait=True)
                forger.close()

        console.print(f"\nevery mention answered in {time.monotonic() - started:.1f} s\n")
        for tweet_id, author in asked.items():
            mention = next(t for t in x.tweets_by(author) if t.id == tweet_id)
            print(f"@{author}: {mention.text}  [{len(mention.media_keys)} image(s)]")
            for reply in x.replies_to(tweet_id):
                saved = []
                for n, key in enumerate(reply.media_keys, start=1):
                    media = x.media(key)
                    path = out / f"reply-to-{author}-{n}.{media.content_type.split('/')[-1].replace('jpeg', 'jpg')}"
                    path.write_bytes(media.data)
                    saved.append(str(path))
                print(f"  @{handle}: {reply.text}" + (f"  [image: {', '.join(saved)}]" if saved else ""))
    print(f"\noutput in {out}")
    print("the web page and API: `forger web --demo` serves them on http://127.0.0.1:8000/ "
          "(upload a photo, pick a painting, watch it painted)")
    print("the admin pages on this run's database: .venv/bin/forger admin --demo "
          "(it asks for a password the first time), then http://127.0.0.1:8000/admin/")
    return out
