"""How long the bot's worker takes per picture: renders one after another in one process.

    python -m bench.worker                        # three shipped pairs at the defaults, 512 px
    python -m bench.worker --size 256 PHOTO PAINTING [PHOTO PAINTING ...]

A worker builds its renderer once and paints job after job, so only its first render pays for
start-up (importing TensorFlow, loading the weights) and each new picture size for compiling.
This prints the start-up, then each render's seconds (its photo, painting and picture size),
from a fresh process: the figures of issue #17's goals 3 and 4 (the first picture in a fresh
process; the second and third in the same one). Pictures go to ``--out``.

The default pairs are the shipped sample photos and gallery paintings (``bot/samples``,
``bot/paintings``): the first two photos are painted at the same size (one compiled program),
the third at another, as a worker meets them.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time

BOT = pathlib.Path(__file__).resolve().parents[1] / "bot"
DEFAULT_PAIRS = (
    (BOT / "samples" / "coffee.jpg", BOT / "paintings" / "starry_night.jpg"),
    (BOT / "samples" / "coffee.jpg", BOT / "paintings" / "the_scream.jpg"),
    (BOT / "samples" / "chelsea.jpg", BOT / "paintings" / "shipwreck.jpg"),
)


def main() -> None:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", type=pathlib.Path, help="PHOTO PAINTING pairs (default: three shipped pairs)")
    parser.add_argument("--size", type=int, default=512, help="longest side, px (default 512)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("bench-output"))
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                        help="what the network computes in (default auto: model.render.computes_in)")
    args = parser.parse_args()
    if len(args.images) % 2:
        parser.error("images come in PHOTO PAINTING pairs")
    pairs = list(zip(args.images[::2], args.images[1::2])) or list(DEFAULT_PAIRS)
    missing = [str(path) for pair in pairs for path in pair if not path.is_file()]
    if missing:
        parser.error(f"no such image: {', '.join(missing)}")
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from model import RenderSettings, load_image, save_image
    from model.render import StyleTransfer, computes_in

    painter = StyleTransfer.bundled()
    settings = RenderSettings(size=args.size, precision=args.precision)
    print(f"precision: {computes_in(settings)}", flush=True)
    print(f"start-up (imports, weights): {time.perf_counter() - started:.1f} s", flush=True)
    for number, (photo, painting) in enumerate(pairs, 1):
        began = time.perf_counter()
        picture = painter.render(load_image(photo), load_image(painting), settings)
        seconds = time.perf_counter() - began
        save_image(picture, args.out / f"worker_{number}_{photo.stem}_{painting.stem}.jpg")
        print(f"render {number}: {photo.name} x {painting.name}, {picture.shape[1]}x{picture.shape[0]} px: "
              f"{seconds:.1f} s", flush=True)
    print(f"in all, from the command: {time.perf_counter() - started:.1f} s on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
