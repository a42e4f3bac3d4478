"""``forger``: the command line. Thin shells over the same functions the scheduler uses."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot.config import Config, default_config_path, load_config
from bot.errors import ForgerError, PlatformError
from bot.progress import render_progress
from model.errors import ModelError
from storage.errors import StorageError

if TYPE_CHECKING:
    from bot.app import Forger
    from bot.platform import Platform

console = Console(stderr=True)
log = logging.getLogger(__name__)


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
    # APScheduler's two lines for every run of every job (the worker looks every 2 s) say nothing.
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
    ctx.obj = config_path or default_config_path()


def _config(ctx: click.Context) -> Config:
    """The settings, or one clear line saying what is wrong with them."""
    with _user_errors():
        return load_config(ctx.obj)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Show the bot's own errors as one clear line, not a traceback."""
    try:
        yield
    except (ForgerError, ModelError, StorageError) as exc:
        raise click.ClickException(str(exc)) from exc
    except OperationalError as exc:  # the server is down, the file unwritable, the password wrong
        raise click.ClickException(f"the database could not be used: {exc.orig or exc}") from exc


class _Numbers(click.ParamType):
    """A comma-separated list of numbers: ``0.5,1`` or ``20,10``."""

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.name = "list of " + ("whole numbers" if kind is int else "numbers")

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> tuple:
        if isinstance(value, tuple):
            return value
        try:
            return tuple(self.kind(part) for part in str(value).split(",") if part.strip())
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated {self.name}, such as 20,10", param, ctx)


class _Names(click.ParamType):
    """A comma-separated list of names: ``block1_conv1,block2_conv1``."""

    name = "list of names"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> tuple:
        return value if isinstance(value, tuple) else tuple(p.strip() for p in str(value).split(",") if p.strip())


# `forger render` flag -> RenderSettings field; each defaults to config.yaml's render section.
_RENDER_FLAGS = {
    "size": "size", "scales": "scales", "iterations": "iterations", "early_stop": "early_stop",
    "optimiser": "optimiser", "learning_rate": "learning_rate", "init": "init", "start_colours": "start_colours", "seed": "seed",
    "network": "network", "content_weight": "content_weight", "style_weight": "style_weight",
    "tv_weight": "tv_weight", "strength": "strength", "content_layers": "content_layers",
    "style_layers": "style_layers", "layer_weights": "style_layer_weights",
    "style_scale": "style_scale", "blend": "style_blend", "colours": "colours", "faces": "faces",
    "precision": "precision",
}


@main.command()
@click.argument("content", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("style", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the painted picture (.jpg or .png).")
@click.option("--size", type=click.IntRange(16, 8192), help="Longest side in pixels.")
@click.option("--scales", type=_Numbers(float), help="Coarse-to-fine sizes, fractions of --size ending at 1: 0.5,1.")
@click.option("--iterations", type=_Numbers(int), help="Iterations at each scale: 20,10.")
@click.option("--early-stop", type=float, help="End a stage when its loss falls less than this fraction in 10 iterations (0: never).")
@click.option("--optimiser", "--optimizer", type=click.Choice(["lbfgs", "adam"]), help="The optimiser.")
@click.option("--learning-rate", type=float, help="Adam's step, for pixels in 0..1.")
@click.option("--init", type=click.Choice(["content", "noise", "image"]), help="Where the picture starts.")
@click.option("--start-colours", "--start-colors", type=click.Choice(["painting", "photo"]),
              help="With --init content: start from the photo in the painting's colours, or as it is.")
@click.option("--init-image", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The start of --init image.")
@click.option("--seed", type=click.IntRange(0), help="Seed of --init noise.")
@click.option("--network", type=click.Choice(["vgg16", "vgg19"]), help="vgg16 (bundled) or vgg19 (ImageNet, keras.applications).")
@click.option("--weights", "weights_path", type=click.Path(dir_okay=False, path_type=Path), help="The network's weights file.")
@click.option("--weights-sha256", help="The SHA-256 of --weights.")
@click.option("--content-weight", type=float, help="Weight of the content loss.")
@click.option("--style-weight", type=float, help="Weight of the style loss.")
@click.option("--tv-weight", type=float, help="Weight of the smoothness (total variation) loss.")
@click.option("--strength", help="low, normal, high, or a number: a multiple of the style weight.")
@click.option("--content-layers", type=_Names(), help="Content layers: block4_conv2.")
@click.option("--style-layers", type=_Names(), help="Style layers: block1_conv1,block2_conv1,...")
@click.option("--layer-weights", type=_Numbers(float), help="A weight per style layer.")
@click.option("--style-scale", type=float, help="Painting size relative to the picture (smaller: larger strokes).")
@click.option("--blend", type=_Numbers(float), help="With several STYLE paintings, the weight of each: 0.7,0.3.")
@click.option("--colours", "--colors", type=click.Choice(["painting", "luminance", "histogram"]),
              help="painting: its colours; luminance: keep the photo's colours; histogram: the painting's matched to the photo's.")
@click.option("--faces", type=click.Choice(["auto", "off"]), help="auto: keep faces recognisable; off: paint them like the rest.")
@click.option("--precision", type=click.Choice(["auto", "float32", "bfloat16"]),
              help="What the network computes in; auto: bfloat16 on a GPU or a CPU with bfloat16 instructions (AVX-512 BF16, AMX), float32 elsewhere.")
@click.pass_context
def render(ctx: click.Context, content: Path, style: tuple[Path, ...], out: Path, init_image: Path | None,
           weights_path: Path | None, weights_sha256: str | None, **flags: object) -> None:
    """Paint CONTENT in the style of STYLE (one painting, or several to blend).

    Every setting defaults to config.yaml's render section.
    """
    from dataclasses import replace

    with _user_errors():
        config = _config(ctx)
        from model.images import image_format, load_image, save_image
        from model.settings import parse_strength

        changes = {_RENDER_FLAGS[name]: value for name, value in flags.items() if value is not None}
        if init_image is not None:
            changes.setdefault("init", "image")  # --init-image alone says where to start
        if weights_sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", weights_sha256):
            raise click.UsageError(f"--weights-sha256 must be 64 hexadecimal digits, got: {weights_sha256!r}")
        if weights_sha256 is not None and weights_path is None and not config.render.weights_path:
            raise click.UsageError("--weights-sha256 checks the file given by --weights; the bundled VGG16 is pinned")
        # A name the picture cannot be saved under fails here, not after the render.
        try:
            image_format(out)
        except ModelError as exc:
            raise click.UsageError(str(exc)) from exc
        if not out.parent.is_dir():
            raise click.UsageError(f"cannot write {out}: there is no folder {out.parent}")
        try:
            if "strength" in changes:
                changes["strength"] = parse_strength(str(changes["strength"]))
            settings = replace(config.render.settings, **changes)  # type: ignore[arg-type]
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        if weights_path is None and settings.network == config.render.settings.network:
            weights_path = Path(config.render.weights_path) if config.render.weights_path else None
            weights_sha256 = weights_sha256 or config.render.weights_sha256
        if weights_path is not None and not weights_sha256:
            raise click.UsageError("--weights needs --weights-sha256: weights are checked before use")
        if settings.init == "image" and init_image is None:
            raise click.UsageError("--init image needs --init-image FILE, the picture to start from")
        if settings.init != "image" and init_image is not None:
            raise click.UsageError(f"--init-image is where --init image starts, not --init {settings.init}")
        if settings.style_blend and len(settings.style_blend) != len(style):
            count = f"{len(style)} painting" + ("s" if len(style) != 1 else "")
            raise click.UsageError(f"--blend gives {len(settings.style_blend)} weights for {count}")
        # Bad files fail here, before TensorFlow loads.
        picture, paintings = load_image(content), [load_image(path) for path in style]
        start = load_image(init_image) if init_image else None
        from model.render import StyleTransfer

        started = time.monotonic()
        transfer = StyleTransfer.load(settings.network, weights_path, weights_sha256)
        title = f"{content.name} × {' + '.join(path.name for path in style)}"
        with render_progress(title, console) as progress:
            try:
                painted = transfer.render(picture, paintings, settings, progress=progress, init_image=start)
            except ValueError as exc:  # settings that do not fit the inputs (--blend, --init image)
                raise click.UsageError(str(exc)) from exc
        save_image(painted, out)
        click.echo(f"wrote {out} ({painted.shape[1]}×{painted.shape[0]}) in {time.monotonic() - started:.1f} s")


RENDERERS = click.Choice(["neural", "quick"])
RENDERER_HELP = "neural: the real painting (default); quick: an instant colour transfer, to try the plumbing."


def _serve(ctx: click.Context, *, poll: bool, work: bool, deliver: bool, renderer: str = "neural") -> None:
    from bot.app import Forger
    from bot.platform import Platform
    from bot.rendering import QuickRenderer
    from bot.scheduler import build_scheduler

    # A bot left to run logs what it does (mentions read, jobs painted, replies posted) without -v.
    if not logging.getLogger("bot").isEnabledFor(logging.INFO):
        logging.getLogger("bot").setLevel(logging.INFO)
    with _user_errors():
        config = _config(ctx)
        # A process that only renders needs the database and nothing else: no platform, no keys.
        forger = Forger.create(config, os.environ, renderer=QuickRenderer() if renderer == "quick" else None,
                               render_only=not (poll or deliver))
        handles = [_check_account(platform) for platform in forger.platforms.values()]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    scheduler = build_scheduler(forger, poll=poll, work=work, deliver=deliver)
    scheduler.start()
    doing = " + ".join(name for name, on in (("poll", poll), ("work", work), ("deliver", deliver)) if on)
    serving = "serving " + ", ".join(handles) if handles else "painting"
    click.echo(f"forger: {serving} ({doing}); Ctrl-C stops")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        log.warning("stopping: a render in hand goes back to the queue")
        forger.stopping.set()
        scheduler.shutdown(wait=True)
        forger.close()


def _check_account(platform: Platform) -> str:
    """``@handle on platform``, for the account the platform's credentials are for, which must be
    the configured one."""
    try:
        handle = platform.me().handle
    except PlatformError as exc:
        if not exc.transient:
            raise
        # The platform is down, or its read cap is spent: posting may still work, so serve, unchecked.
        handle = platform.handle
        log.warning("could not ask %s which account the credentials are for (%s): serving @%s unchecked",
                    platform.name, exc, handle)
    if handle.lower() != platform.handle.lower():
        raise ForgerError(
            f"the {platform.name} credentials are for @{handle}, but config {platform.name}.handle is {platform.handle}"
        )
    return f"@{handle} on {platform.name}"


@main.command()
@click.option("--renderer", type=RENDERERS, default="neural", help=RENDERER_HELP)
@click.pass_context
def run(ctx: click.Context, renderer: str) -> None:
    """Poll the mentions, render and post in one process (a small deployment)."""
    _serve(ctx, poll=True, work=True, deliver=True, renderer=renderer)


@main.command()
@click.pass_context
def poll(ctx: click.Context) -> None:
    """Poll the mentions, queue requests and post every reply owed, results too (the Procfile's `poller`)."""
    _serve(ctx, poll=True, work=False, deliver=True)


@main.command()
@click.option("--renderer", type=RENDERERS, default="neural", help=RENDERER_HELP)
@click.pass_context
def work(ctx: click.Context, renderer: str) -> None:
    """Only render queued jobs; their results go to the outbox (the Procfile's `worker`: it needs
    only the database URL)."""
    _serve(ctx, poll=False, work=True, deliver=False, renderer=renderer)


@main.command("deliver")
@click.pass_context
def deliver_command(ctx: click.Context) -> None:
    """Only post the replies owed, results and texts (the outbox in a process of its own)."""
    _serve(ctx, poll=False, work=False, deliver=True)


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the database and the posted images (default: ./demo-output/run-TIME).")
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder with coffee.jpg, starry_night.jpg and chelsea.jpg to use instead "
                   "(default: the sample photos in bot/samples, the painting from the gallery).")
# Two renders (a photo with a painting, a lone photo with a gallery painting) at 256 px take well
# under a minute each on 2 CPU cores, which keeps the whole demo within a few minutes.
@click.option("--size", type=click.IntRange(32, 4096), default=256, show_default=True, help="Render size in pixels.")
@click.option("--iterations", type=_Numbers(int), default=None, help="Iterations at each scale (default: config).")
@click.option("--quick", is_flag=True, help="Use the instant colour-transfer renderer instead of the network.")
@click.option("--x-dialect", type=click.Choice(["posts", "tweets"]), default="posts", show_default=True,
              help="The names the sandbox X takes: X's current ones (posts) or those before its Post rename.")
@click.pass_context
def demo(ctx: click.Context, out: Path | None, images: Path | None, size: int, iterations: tuple[int, ...] | None,
         quick: bool, x_dialect: str) -> None:
    """Run the whole bot against a sandbox X on loopback, end to end."""
    from bot.x.demo import run_demo

    with _user_errors():
        run_demo(_config(ctx), out=out, images=images, size=size, iterations=iterations, quick=quick, console=console,
                 x_dialect=x_dialect)


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


@db.command()
@click.option("--vacuum", is_flag=True, help="Then give the space freed back to the disk (SQLite: rewrites the file).")
@click.pass_context
def prune(ctx: click.Context, vacuum: bool) -> None:
    """Apply the retention: delete photos and results older than retention.images_days, roll up
    ledger and job-history rows older than retention.rollup_days (the poller does it daily)."""
    from bot import retention
    from bot.gallery import Gallery
    from storage import schema
    from storage.db import database_size, open_engine, session_factory

    config = _config(ctx)
    with _user_errors():
        engine = open_engine(config.database.url, create=False)
        try:
            schema.check(engine)
            before = database_size(engine)
            keep = retention.Retention(config.retention.images_days, config.retention.rollup_days)
            report = retention.prune(session_factory(engine), Gallery.load(config.gallery.extra_dirs), keep)
            if vacuum:
                retention.vacuum(engine)
            after = database_size(engine)
        finally:
            engine.dispose()
    click.echo(f"images of {report.images_deleted} jobs deleted, {report.paintings_referenced} gallery copies "
               f"referenced, {report.calls_rolled_up} ledger rows and {report.events_rolled_up} job events rolled up")
    click.echo(f"database: {before / 1e6:.1f} MB before, {after / 1e6:.1f} MB after")


# -- admin: thin shells over bot.admin ---------------------------------------------------------------


@contextmanager
def _admin_session(ctx: click.Context) -> Iterator[Session]:
    """A transaction on the configured database (checked to be at the current schema)."""
    from storage import schema
    from storage.db import open_engine, session_factory

    with _user_errors():
        engine = open_engine(_config(ctx).database.url, create=False)
        try:
            schema.check(engine)
            with session_factory(engine).begin() as session:
                yield session
        finally:
            engine.dispose()


def _emit(data: object, as_json: bool, table: Callable[[], None]) -> None:
    from bot.admin import to_json

    if as_json:
        click.echo(json.dumps(to_json(data), indent=2))
    else:
        table()


def _plain(text: object) -> str:
    """Stored text for a terminal: control characters (and right-to-left overrides) escaped as
    ``\\u202e``, so that none can move the cursor, recolour or reverse what follows."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in ("" if text is None else str(text)))


def _cell(text: object) -> str:
    """``_plain``, and safe from rich's [markup] in a table cell."""
    from rich.markup import escape

    return escape(_plain(text))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@main.command("queue")
@click.option("--state", "states", multiple=True, help="Only jobs in this state (repeatable).")
@click.option("--user", default=None, help="Only jobs of this username.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@JSON_OPTION
@click.pass_context
def queue_command(ctx: click.Context, states: tuple[str, ...], user: str | None, limit: int, as_json: bool) -> None:
    """The jobs, newest first: state, age, position, progress, attempts."""
    from rich.table import Table

    from bot import admin

    with _admin_session(ctx) as session, _user_errors():
        rows = admin.queue(session, states=states, user=user, limit=limit)

    def table() -> None:
        out = Table("id", "user", "state", "age", "position", "progress", "attempts", "error")
        for r in rows:
            progress = f"{r.progress:.0%}" if r.progress is not None else "-"
            out.add_row(str(r.id), "@" + _cell(r.user), r.state, _age(r.age_s), str(r.position or "-"), progress,
                        str(r.attempts), _cell((r.error or "")[:60]))
        Console().print(out)

    _emit(rows, as_json, table)


@main.command("job")
@click.argument("job_id", type=int)
@JSON_OPTION
@click.pass_context
def job_command(ctx: click.Context, job_id: int, as_json: bool) -> None:
    """Everything about one job: request, history, timings, images."""
    from bot import admin

    with _admin_session(ctx) as session, _user_errors():
        detail = admin.job(session, job_id)

    def table() -> None:
        r = detail.row
        click.echo(f"job {r.id}: @{_plain(r.user)}, {r.state}, attempt {r.attempts}, priority {r.priority}")
        if detail.post_ref:
            click.echo(f"  {detail.platform} post {_plain(detail.post_ref)}: {_plain(detail.text)}")
        stored = " (as stored: not options this version knows)" if detail.options_unknown else ""
        click.echo(f"  options{stored}: " + ", ".join(f"{_plain(k)}={_plain(v)}" for k, v in detail.options.items()))
        if detail.reply_ref:
            click.echo(f"  replied with post {_plain(detail.reply_ref)}")
        if r.error:
            click.echo(f"  error: {_plain(r.error)}")
        if detail.held_until:
            click.echo(f"  held until {detail.held_until:%Y-%m-%d %H:%M:%S} UTC")
        click.echo(f"  render {_age(detail.render_s)}, eta {_age(detail.eta_s)}, lease {detail.lease_owner or '-'}")
        for role, size in detail.images.items():
            click.echo(f"  {role} image: {f'{size} bytes, `forger job-image {r.id} {role} -o FILE`' if size else 'none'}")
        click.echo("  history:")
        for e in detail.history:
            click.echo(f"    {e.at:%Y-%m-%d %H:%M:%S} {e.from_state or '-':>9} -> {e.to_state:<9} {_plain(e.reason)}")

    _emit(detail, as_json, table)


@main.command("job-image")
@click.argument("job_id", type=int)
@click.argument("role", type=click.Choice(["content", "style", "result"]))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_context
def job_image_command(ctx: click.Context, job_id: int, role: str, out: Path) -> None:
    """Save one of a job's images (the picture, the painting or the result) to a file."""
    from bot import admin

    with _admin_session(ctx) as session, _user_errors():
        data = admin.image(session, job_id, role)  # type: ignore[arg-type]
        if data is None:
            raise ForgerError(f"job {job_id} has no {role} image yet")
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from exc
    click.echo(f"wrote {out} ({len(data)} bytes)")


@main.command("retry")
@click.argument("job_id", type=int)
@click.pass_context
def retry_command(ctx: click.Context, job_id: int) -> None:
    """Put a failed job back in the queue."""
    from bot import admin

    with _admin_session(ctx) as session, _user_errors():
        admin.retry(session, job_id, by="cli")
    click.echo(f"job {job_id} queued again")


@main.command("cancel")
@click.argument("job_id", type=int)
@click.pass_context
def cancel_command(ctx: click.Context, job_id: int) -> None:
    """Stop a job that has not been replied to."""
    from bot import admin

    with _admin_session(ctx) as session, _user_errors():
        admin.cancel(session, job_id, by="cli")
    click.echo(f"job {job_id} cancelled")


@main.command("user")
@click.argument("name")
@click.option("--ban", "ban_reason", default=None, metavar="REASON", help="Ban the user (no replies, no renders; their waiting jobs are cancelled).")
@click.option("--unban", is_flag=True, help="Lift a ban.")
@click.option("--priority", type=click.IntRange(0, 100), default=None, help="Higher goes first (their queued jobs too); 0 is everyone.")
@JSON_OPTION
@click.pass_context
def user_command(
    ctx: click.Context, name: str, ban_reason: str | None, unban: bool, priority: int | None, as_json: bool
) -> None:
    """Show a user, and ban, unban or prioritise them."""
    from bot import admin

    if ban_reason is not None and unban:
        raise click.UsageError("--ban and --unban together make no sense")
    with _admin_session(ctx) as session, _user_errors():
        cancelled: list[int] = []
        if ban_reason is not None:
            cancelled = admin.ban(session, name, reason=ban_reason)
        if unban:
            admin.unban(session, name)
        if priority is not None:
            admin.set_priority(session, name, priority)
        info = admin.user(session, name)

    def table() -> None:
        ban = f"banned ({_plain(info.ban_reason)})" if info.banned else "not banned"
        click.echo(f"@{_plain(info.username)} ({info.platform} id {_plain(info.user_ref)}): {ban}, priority {info.priority}, "
                   f"{info.renders_last_day} renders in 24 h, {info.jobs_total} jobs in all")
        if cancelled:
            click.echo(f"cancelled their jobs {', '.join(map(str, cancelled))}")

    _emit(info, as_json, table)


@main.command("stats")
@JSON_OPTION
@click.pass_context
def stats_command(ctx: click.Context, as_json: bool) -> None:
    """Jobs by state, renders per hour, render and wait times, X API calls and spend."""
    from bot import admin

    from bot.platforms import budgets_usd

    budget = sum(budgets_usd(_config(ctx)).values())
    with _admin_session(ctx) as session, _user_errors():
        found = admin.stats(session, budget_usd=budget)

    def table() -> None:
        click.echo("jobs: " + ", ".join(f"{n} {state}" for state, n in found.jobs_by_state.items()))
        click.echo(f"renders: {found.renders_last_hour} in the last hour, {found.renders_last_day} in 24 h; "
                   f"median render {_age(found.median_render_s)}, median wait {_age(found.median_wait_s)}")
        click.echo(f"platform APIs: {found.api_calls_this_month} calls this month, "
                   f"${found.spent_usd:.2f} of ${found.budget_usd:.2f} ({found.spent_usd / found.budget_usd:.0%})"
                   if found.budget_usd else f"platform APIs: {found.api_calls_this_month} calls this month")
        for w in found.windows:
            click.echo(f"  {w.endpoint}: {w.remaining}/{w.limit} left, resets {w.reset_at:%H:%M:%S} UTC"
                       + (f", capped until {w.capped_until:%Y-%m-%d %H:%M}" if w.capped_until else ""))
        if found.alerts_last_day:
            click.echo(f"alerts: {found.alerts_last_day} in 24 h; latest: {found.latest_alert}")
        click.echo(f"database: {found.database_bytes / 1e6:.1f} MB")

    _emit(found, as_json, table)


# -- the web app: the public side, and the admin side where a password is set ----------------------------

HOST_OPTION = click.option(
    "--host", default=None,
    help="Address to listen on (0.0.0.0: every interface). Default: 127.0.0.1, or 0.0.0.0 where "
         "the platform gives the port in $PORT (Heroku's web process).")
PORT_OPTION = click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, envvar="PORT",
                           help="Port to listen on ($PORT where the platform sets it).")
DEMO_OPTION = click.option("--demo", is_flag=True,
                           help="Use the database of the last `make demo` run instead of the configured one.")


def _web_config(ctx: click.Context, demo: bool) -> Config:
    config = _config(ctx)
    if not demo:
        return config
    from dataclasses import replace

    from bot.x.demo import last_database

    with _user_errors():
        database = last_database()
    return config.replace(database=replace(config.database, url=f"sqlite:///{database}"))


def _stored_hash(config: Config) -> str | None:
    from bot.web.admin import AdminSettings
    from storage import admins, schema
    from storage.db import open_engine, session_factory

    with _user_errors():
        engine = open_engine(config.database.url, create=False)
        try:
            schema.check(engine)
            with session_factory(engine, read_only=True).begin() as s:
                return admins.password_hash(s, AdminSettings().account)
        finally:
            engine.dispose()


def _set_password(config: Config, password: str) -> int:
    """Check ``password`` against the policy and store its hash; the sessions it ended."""
    from bot.web.admin import AdminSettings
    from bot.web.admin.passwords import check_policy, hash_password
    from storage import admins, schema
    from storage.db import open_engine, session_factory
    from storage.models import utcnow

    with _user_errors():
        check_policy(password)
        engine = open_engine(config.database.url, create=False)
        try:
            schema.check(engine)
            with session_factory(engine).begin() as s:
                return admins.set_password_hash(s, AdminSettings().account, hash_password(password), now=utcnow())
        finally:
            engine.dispose()


def _ask_password() -> str:
    return str(click.prompt("New admin password (12 characters or more)", hide_input=True,
                            confirmation_prompt="Again, to be sure"))


def _serve_web(config: Config, host: str | None, port: int, *, public: bool, admin: bool | None, name: str,
               workers: int | None = None) -> None:
    """Serve the web app; ``admin``: the admin side on (True), off (False), or on if a password is
    stored (None). ``workers``: processes serving it (default: ``web.workers``)."""
    from bot.web import create_app
    from bot.web.admin import AdminSettings
    from bot.web.serve import listen, serve
    from storage import schema
    from storage.db import open_engine, session_factory

    with _user_errors():
        engine = open_engine(config.database.url, create=False)
    try:
        with _user_errors():
            schema.check(engine)
            if admin is not False:
                stored = _stored_hash(config) is not None
                if admin and not stored:
                    raise ForgerError("no admin password is set: `.venv/bin/forger admin set-password` sets one")
                admin = stored
            settings = AdminSettings.from_config(config) if admin else None
            app = create_app(config, session_factory(engine), reads=session_factory(engine, read_only=True),
                             public=public, admin=settings)
            host = host or ("0.0.0.0" if os.environ.get("PORT") else "127.0.0.1")
            listening = listen(host, port)
        shown = f"[{host}]" if ":" in host else host
        workers = workers or config.web.workers
        click.echo(f"forger {name}: serving on http://{shown}:{port}/" + (f" (admin pages: http://{shown}:{port}/admin/)"
                                                                          if settings else " (admin pages off: no password set)")
                   + (f" in {workers} processes" if workers > 1 else "") + " ; Ctrl-C stops")
        if settings and host not in ("127.0.0.1", "localhost", "::1"):
            click.echo(f"forger {name}: listening on {host}, reachable from other machines; the admin pages answer "
                       f"only to the hosts {', '.join(settings.allowed_hosts)} (config admin.allowed_hosts)", err=True)
        serve(app, listening, proxy_headers=config.web.trust_proxy, workers=workers,
              after_fork=lambda: engine.dispose(close=False))
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()


@main.group("admin", invoke_without_command=True)
@HOST_OPTION
@PORT_OPTION
@DEMO_OPTION
@click.pass_context
def admin_command(ctx: click.Context, host: str | None, port: int, demo: bool) -> None:
    """Serve the web app with its admin pages under /admin (as `forger web` does once a password is
    set); `forger admin set-password` sets the password."""
    if ctx.invoked_subcommand is not None:
        return
    config = _web_config(ctx, demo)
    if demo and _stored_hash(config) is None:
        if not sys.stdin.isatty():
            raise click.ClickException("the demo's database has no admin password yet: "
                                       "`.venv/bin/forger admin set-password --demo` sets one")
        click.echo("The demo's database has no admin password yet: choose one.")
        _set_password(config, _ask_password())
    _serve_web(config, host, port, public=True, admin=True, name="admin")


@admin_command.command("set-password")
@DEMO_OPTION
@click.pass_context
def set_password_command(ctx: click.Context, demo: bool) -> None:
    """Set the admin password (asked for twice; at least 12 characters, not a common one). Only its
    hash is stored, in the database; every admin logged in is logged out."""
    config = _web_config(ctx, demo)
    ended = _set_password(config, _ask_password())
    click.echo("admin password set" + (f"; {ended} session(s) ended" if ended else ""))


@main.command("web")
@HOST_OPTION
@PORT_OPTION
@click.option("--demo", is_flag=True,
              help="Try it on this machine: a fresh SQLite database under demo-output/ and a worker with the "
                   "quick renderer in this process, on loopback.")
@click.pass_context
def web_command(ctx: click.Context, host: str | None, port: int, demo: bool) -> None:
    """Serve the web app: the public page and API, and the admin pages under /admin once an admin
    password is set (the Procfile's `web`)."""
    with _user_errors():
        config = _config(ctx)
        if demo:
            config, host = _web_demo(config), "127.0.0.1"
    # The demo's worker is a thread of this process, which forked processes would not have.
    _serve_web(config, host, port, public=True, admin=None, name="web", workers=1 if demo else None)


def _web_demo(config: Config) -> Config:
    """``forger web --demo``: a fresh SQLite database and a quick worker painting in a thread."""
    from dataclasses import replace

    from bot.app import Forger
    from bot.rendering import QuickRenderer

    folder = Path("demo-output") / time.strftime("web-%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    config = config.replace(database=replace(config.database, url=f"sqlite:///{folder / 'forger.sqlite3'}"))
    forger = Forger.create(config, os.environ, renderer=QuickRenderer(), upgrade=True, render_only=True)

    def paint() -> None:
        while not forger.stopping.is_set():
            if forger.work() == 0:
                forger.stopping.wait(0.5)

    threading.Thread(target=paint, name="demo-worker", daemon=True).start()
    click.echo(f"forger web --demo: database {folder / 'forger.sqlite3'}, a quick-renderer worker in this process")
    return config


# -- the web API's keys and client ---------------------------------------------------------------------


@main.group("api-key")
def api_key() -> None:
    """Keys to the web API: each has its own daily quota and priority."""


@api_key.command("create")
@click.argument("name")
@click.option("--per-day", type=click.IntRange(0, 100_000), default=None,
              help="Renders in any 24 hours (default: queue.per_user_per_day).")
@click.option("--priority", type=click.IntRange(0, 1000), default=0, show_default=True,
              help="Its jobs are painted before those of lower priority.")
@click.pass_context
def api_key_create(ctx: click.Context, name: str, per_day: int | None, priority: int) -> None:
    """Make a key called NAME and print it (shown this once: only its hash is kept)."""
    from storage import api_keys

    per_day = _config(ctx).queue.per_user_per_day if per_day is None else per_day
    with _admin_session(ctx) as session:
        key, secret = api_keys.create(session, name, per_day=per_day, priority=priority)
        key_id = key.id
    click.echo(f"API key {key_id} ({name}, {per_day} a day, priority {priority}):\n{secret}\n"
               "Keep it: it is not shown again.")


@api_key.command("list")
@JSON_OPTION
@click.pass_context
def api_key_list(ctx: click.Context, as_json: bool) -> None:
    """Every key: id, name, quota, priority, made, revoked."""
    from storage import api_keys

    with _admin_session(ctx) as session:
        rows = [{"id": k.id, "name": k.name, "per_day": k.per_day, "priority": k.priority,
                 "created_at": k.created_at.isoformat(timespec="seconds"),
                 "revoked_at": k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else None}
                for k in api_keys.everyone(session)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no API keys yet: `forger api-key create NAME` makes one")
    for row in rows:
        revoked = f"  REVOKED {row['revoked_at']}" if row["revoked_at"] else ""
        click.echo(f"{row['id']:>4}  {row['name']:<24} {row['per_day']:>6}/day  priority {row['priority']:<4} "
                   f"made {row['created_at']}{revoked}")


@api_key.command("revoke")
@click.argument("key_id", type=int)
@click.pass_context
def api_key_revoke(ctx: click.Context, key_id: int) -> None:
    """Revoke key KEY_ID: it works no more (jobs already queued are still painted)."""
    from storage import api_keys

    with _admin_session(ctx) as session:
        key = api_keys.get(session, key_id)
        if key is None:
            raise click.ClickException(f"there is no API key {key_id} (`forger api-key list` shows them)")
        api_keys.revoke(session, key)
    click.echo(f"API key {key_id} is revoked")


@main.command("submit")
@click.argument("photo", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("painting")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to save the painted picture.")
@click.option("--server", envvar="FORGER_SERVER", required=True, help="The web app's URL ($FORGER_SERVER).")
@click.option("--key", envvar="FORGER_API_KEY", default=None, help="An API key ($FORGER_API_KEY).")
@click.option("--strength", type=click.Choice(["low", "normal", "high"]), default="normal", show_default=True)
@click.option("--keep-colours", is_flag=True, help="Keep the photo's colours.")
@click.option("--faces/--no-faces", default=True, show_default=True, help="Keep faces recognisable.")
@click.option("--size", type=click.IntRange(32, 4096), default=None, help="Longest side in pixels (server's cap).")
def submit_command(photo: Path, painting: str, out: Path, server: str, key: str | None, strength: str,
                   keep_colours: bool, faces: bool, size: int | None) -> None:
    """Paint PHOTO like PAINTING (a file, or a gallery painting's name) on a Forger server; save it to OUT."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from bot.web.client import Client

    style: str | Path = Path(painting) if Path(painting).is_file() else painting
    client = Client(server, key=key)
    with _user_errors():
        status = client.submit(photo, style, strength=strength, keep_colours=keep_colours, faces=faces, size=size)
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("queued", total=100, note="")

            def show(s: dict[str, object]) -> None:
                place, eta = s.get("position"), s.get("eta_s")
                note = f"#{place} in line" if place else ""
                if isinstance(eta, (int, float)) and s["state"] != "done":
                    note += f" about {eta:.0f} s left"
                bar.update(task, description=str(s["state"]), completed=float(s["progress"]) * 100,  # type: ignore[arg-type]
                           note=note.strip())

            final = client.follow(status, show)
        if final["state"] != "done":
            raise click.ClickException(f"the painting was not made: {final['message']}")
        data = client.fetch(final["links"]["result"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    click.echo(f"wrote {out} ({len(data):,} bytes); share: {final['links']['page']}")


if __name__ == "__main__":
    main()
