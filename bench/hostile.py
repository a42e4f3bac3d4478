"""Hostile photos through intake and the quick worker: the peak memory each costs, and the verdict.

Builds a corpus of photos an attacker (or an unlucky phone) sends: a huge one-colour PNG that
compresses to a few KB, a huge JPEG, a decompression bomb, long thin strips, a 1×1 pixel, a cut-off
file, CMYK, 16-bit grey, animated GIF and WebP, an EXIF-rotated photo. Each runs in a fresh
subprocess through the whole bot on the in-memory platform (``bot.memory``): the poller downloads
and checks it, the quick worker paints it at ``render.size``. The subprocess first does one
ordinary job, so that its peak RSS then is the render's own needs; the figure that matters is
how much the hostile photo adds to it, which must stay under ``--allowance`` MB (300).

    .venv/bin/python bench/hostile.py            # the table; exit status 1 if a photo costs too much
    .venv/bin/python bench/hostile.py --one PATH # one photo, as JSON (what each subprocess runs)
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "bot" / "samples" / "coffee.jpg"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _jpeg(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85, **options)
    return buffer.getvalue()


def _gradient(width: int, height: int) -> Image.Image:
    """A smooth picture: compresses well, decodes to its full size like any photo."""
    x = np.linspace(0, 255, width, dtype=np.float32)[np.newaxis, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, np.newaxis]
    rgb = np.stack(np.broadcast_arrays(x + 0 * y, y + 0 * x, (x + y) / 2), axis=2).astype(np.uint8)
    return Image.fromarray(rgb)


def _animated(format: str, side: int) -> bytes:
    frames = [Image.new("RGB", (side, side), (40 * n, 90, 200 - 40 * n)) for n in range(5)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def _rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # held sideways: turn 90° clockwise to show
    return _jpeg(_gradient(4000, 3000), exif=exif.tobytes())


def _bomb() -> bytes:
    """A one-colour PNG of 30000×30000 pixels: 900 million pixels in a few hundred KB."""
    return _png(Image.new("L", (30000, 30000), 255))


# name -> how to make it; each a file the bot may well be sent.
CORPUS: dict[str, Callable[[], bytes]] = {
    "ordinary photo (coffee.jpg)": SAMPLE.read_bytes,
    "one-colour PNG 6300x6300 RGB": lambda: _png(Image.new("RGB", (6300, 6300), (200, 30, 30))),
    "one-colour PNG 6300x6300 RGBA": lambda: _png(Image.new("RGBA", (6300, 6300), (200, 30, 30, 128))),
    "one-colour PNG 6300x6300 palette": lambda: _png(Image.new("P", (6300, 6300), 3)),
    "huge JPEG 6000x6000": lambda: _jpeg(_gradient(6000, 6000)),
    "CMYK JPEG 5000x5000": lambda: _jpeg(_gradient(5000, 5000).convert("CMYK")),
    "16-bit grey PNG 6000x6000": lambda: _png(Image.new("I;16", (6000, 6000), 40000)),
    "EXIF-rotated JPEG 4000x3000": _rotated_jpeg,
    "animated GIF 2000x2000": lambda: _animated("GIF", 2000),
    "animated WebP 2000x2000": lambda: _animated("WEBP", 2000),
    "bomb PNG 30000x30000": _bomb,
    "tall thin PNG 64x5000": lambda: _png(_gradient(64, 5000)),
    "strip PNG 1x5000": lambda: _png(_gradient(1, 5000)),
    "tiny PNG 1x1": lambda: _png(Image.new("RGB", (1, 1), (9, 9, 9))),
    "truncated JPEG 3000x3000": lambda: _jpeg(_gradient(3000, 3000))[:150_000],
}


def _peak_mb() -> float:
    """This process's peak resident memory so far, in MB.

    Linux's VmHWM, which starts afresh at exec; ``getrusage``'s ru_maxrss (the fallback elsewhere)
    carries over the high-water mark of the parent that forked it.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_one(path: Path, workdir: Path) -> dict[str, object]:
    """One photo through the poller and the quick worker, after one ordinary job; figures as a dict."""
    from bot.app import Forger
    from bot.config import load_config
    from bot.memory import MemoryPlatform
    from bot.rendering import QuickRenderer
    from storage import jobs

    config = load_config(ROOT / "config.yaml")
    config = config.replace(
        bot=replace(config.bot, platforms=("memory",)),
        database=replace(config.database, url=f"sqlite:///{workdir / 'forger.sqlite3'}"),
    )
    forger = Forger.create(config, {}, renderer=QuickRenderer(size=config.render.settings.size), upgrade=True)
    world = forger.platform
    assert isinstance(world, MemoryPlatform)
    try:
        world.publish("someone", "@forgerbot starry night", photos=[SAMPLE.read_bytes()])
        forger.poll()
        forger.work()
        baseline = _peak_mb()  # the render's own needs: one ordinary job done

        ask = world.publish("mallory", "@forgerbot starry night", photos=[path.read_bytes()])
        forger.poll()
        forger.work()
        peak = _peak_mb()
        with forger.sessions() as session:
            job = jobs.by_post(session, "memory", ask)
            state = job.state.value if job is not None else "refused"
        answers = [p.text for p in world.replies_to(ask)]
    finally:
        forger.close()
    return {"baseline_mb": baseline, "peak_mb": peak, "state": state, "reply": answers[0] if answers else ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", type=Path, help="run one photo and print its figures as JSON")
    parser.add_argument("--allowance", type=float, default=300.0, help="MB a photo may add to the render's needs")
    args = parser.parse_args()
    if args.one is not None:
        with tempfile.TemporaryDirectory() as workdir:
            print(json.dumps(run_one(args.one, Path(workdir))))
        return 0

    over = 0
    with tempfile.TemporaryDirectory() as folder:
        print(f"{'photo':34} {'file':>9} {'base MB':>8} {'peak MB':>8} {'added':>7}  verdict")
        for n, (name, make) in enumerate(CORPUS.items()):
            path = Path(folder) / f"{n:02d}.bin"
            data = make()
            path.write_bytes(data)
            done = subprocess.run(
                [sys.executable, __file__, "--one", str(path)], capture_output=True, text=True, cwd=ROOT, check=False,
            )
            if done.returncode != 0:
                print(f"{name:34} {len(data):>9,}  crashed: {done.stderr.strip().splitlines()[-1:]}")
                over += 1
                continue
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            added = figures["peak_mb"] - figures["baseline_mb"]
            ok = added <= args.allowance
            over += not ok
            verdict = f"{figures['state']}: {figures['reply'][:90]}"
            print(f"{name:34} {len(data):>9,} {figures['baseline_mb']:>8.0f} {figures['peak_mb']:>8.0f} "
                  f"{added:>+7.0f}  {'ok' if ok else 'OVER'} {verdict}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
