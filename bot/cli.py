"""``forger``: the command line. Thin shells over the same functions the scheduler uses."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console

from bot.config import Config, XCredentials, default_config_path, load_config
from bot.errors import ForgerError
from model.errors import ModelError
from storage.errors import StorageError
from bot.progress import render_progress

console = Console(stderr=True)


@click.group()
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Settings file (default: $FORGER_CONFIG or ./config.yaml).")
@click.option("-v", "--verbose", is_flag=True, help="Log what the bot does, step by step.")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, verbose: bool) -> None:
    """Forger: paints people's photos in the style of the painting they send."""
    # TensorFlow's C++ start-up chatter (no CUDA here, CPU features) is noise to a user.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = config_path or default_config_path()


def _config(ctx: click.Context) -> Config:
    return load_config(ctx.obj)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Show the bot's own errors as one clear line, not a traceback."""
    try:
        yield
    except (ForgerError, ModelError, StorageError) as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.argument("content", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("style", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the painted picture (.jpg or .png).")
@click.option("--size", type=click.IntRange(32, 4096), default=None, help="Longest side in pixels (default: config).")
@click.option("--iterations", type=click.IntRange(1, 10000), default=None, help="Optimiser iterations (default: config).")
@click.pass_context
def render(ctx: click.Context, content: Path, style: Path, out: Path, size: int | None, iterations: int | None) -> None:
    """Paint CONTENT in the style of STYLE."""
    with _user_errors():
        config = _config(ctx)
        from model.images import load_image, save_image
        from model.render import StyleTransfer
        from model.settings import RenderSettings

        settings = RenderSettings(
            size=size or config.render.size, iterations=iterations or config.render.iterations
        )
        picture, painting = load_image(content), load_image(style)
        started = time.monotonic()
        transfer = StyleTransfer.bundled()
        with render_progress(f"{content.name} × {style.name}", console) as progress:
            painted = transfer.render(picture, painting, settings, progress=progress)
        save_image(painted, out)
        click.echo(f"wrote {out} ({painted.shape[1]}×{painted.shape[0]}) in {time.monotonic() - started:.1f} s")


def _serve(ctx: click.Context, *, poll: bool, work: bool) -> None:
    from bot.app import Forger
    from bot.scheduler import build_scheduler

    with _user_errors():
        config = _config(ctx)
        forger = Forger.create(config, XCredentials.from_env(os.environ))
        handle = forger.gateway.me()[1]
        if handle.lower() != config.bot.handle.lower():
            raise ForgerError(f"the credentials are for @{handle}, but config bot.handle is {config.bot.handle}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    scheduler = build_scheduler(forger, poll=poll, work=work)
    scheduler.start()
    click.echo(f"forger: serving @{handle} ({'poll' if poll else ''}{' + ' if poll and work else ''}{'work' if work else ''}); Ctrl-C stops")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown(wait=True)
        forger.close()


@main.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Poll the mentions and render in one process (a small deployment)."""
    _serve(ctx, poll=True, work=True)


@main.command()
@click.pass_context
def poll(ctx: click.Context) -> None:
    """Only poll the mentions and queue requests (the Procfile's `poller`)."""
    _serve(ctx, poll=True, work=False)


@main.command()
@click.pass_context
def work(ctx: click.Context) -> None:
    """Only render queued jobs and reply (the Procfile's `worker`)."""
    _serve(ctx, poll=False, work=True)


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the database and the posted images (default: ./demo-output/run-TIME).")
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder with tubingen.jpg, golden_gate.jpg and starry_night.jpg (default: ../shared/images).")
@click.option("--size", type=click.IntRange(32, 4096), default=384, show_default=True, help="Render size in pixels.")
@click.option("--iterations", type=click.IntRange(1, 10000), default=150, show_default=True, help="Render iterations.")
@click.option("--quick", is_flag=True, help="Use the instant colour-transfer renderer instead of the network.")
@click.pass_context
def demo(ctx: click.Context, out: Path | None, images: Path | None, size: int, iterations: int, quick: bool) -> None:
    """Run the whole bot against a sandbox X on loopback, end to end."""
    from bot.demo import run_demo

    with _user_errors():
        run_demo(_config(ctx), out=out, images=images, size=size, iterations=iterations, quick=quick, console=console)


@main.group()
def db() -> None:
    """The database: its schema version and migrations."""


@db.command()
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Apply the migrations the database lacks (safe to run again)."""
    from storage import schema
    from storage.db import open_engine

    with _user_errors():
        engine = open_engine(_config(ctx).database.url)
        try:
            before = schema.current(engine)
            schema.upgrade(engine)
            after = schema.current(engine)
        finally:
            engine.dispose()
    click.echo(f"database at migration {after}" + (" (already)" if before == after else f" (was {before or 'empty'})"))
