"""Time one render and keep the picture: how long a reply takes on this machine.

    python -m bench.render_quick /work/shared/images/tubingen.jpg \\
        /work/shared/images/starry_night.jpg --size 512 --out /tmp/tubingen_starry.png

Prints the time to the first iteration (network build and compilation included), the steady
milliseconds per iteration, the whole render and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import time

# TensorFlow's C++ start-up chatter (no GPU, CPU features) says nothing about the render.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from model import Progress, RenderSettings, load_image, save_image  # noqa: E402
from model.render import StyleTransfer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("content", help="the photo")
    parser.add_argument("style", help="the painting")
    parser.add_argument("--size", type=int, default=RenderSettings().size)
    parser.add_argument("--iterations", type=int, default=RenderSettings().iterations)
    parser.add_argument("--out", default="render_quick.png", help="where the picture goes")
    args = parser.parse_args()

    settings = dataclasses.replace(RenderSettings(), size=args.size, iterations=args.iterations)
    started = time.perf_counter()
    painter = StyleTransfer.bundled()
    content, style = load_image(args.content), load_image(args.style)
    loaded = time.perf_counter()
    marks: list[float] = []

    def progress(step: Progress) -> None:
        marks.append(time.perf_counter())
        if step.iteration % 25 == 0 or step.iteration == 1:
            print(f"iteration {step.iteration:4d}/{step.total}  loss {step.loss:10.4g}  {step.elapsed_s:6.1f} s")

    picture = painter.render(content, style, settings, progress)
    finished = time.perf_counter()
    save_image(picture, args.out)

    steady = (marks[-1] - marks[0]) / (len(marks) - 1) * 1000 if len(marks) > 1 else float("nan")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(f"picture {picture.shape[1]}x{picture.shape[0]} -> {args.out}")
    print(f"weights {loaded - started:.1f} s, first iteration {marks[0] - loaded:.1f} s, "
          f"then {steady:.0f} ms per iteration, {len(marks)} iterations, render {finished - loaded:.1f} s")
    print(f"peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
