"""What the optimiser itself costs per iteration, beyond the network: L-BFGS on a cheap loss.

    python -m bench.optimiser                    # 64 and 512 px, on the Keras backend in use
    KERAS_BACKEND=jax python -m bench.optimiser --sizes 512

The loss is a quadratic the size of a picture (1, S, S, 3), a few microseconds to evaluate, so
the time per iteration is the optimiser's: its compiled iterations (the two-loop direction over
10 pairs, the move, the history's update), the calls into them and the waits for the device.
At small sizes that is mostly calls and waits, at large ones arithmetic. Printed for one
iteration per call (as on a CPU) and for ``GPU_CHUNK`` per call (as on a GPU). Each size runs
60 iterations three times after a warm-up; the best is printed.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def per_iteration_ms(size: int, chunk: int, iterations: int = 60, repeats: int = 3) -> float:
    """The best of ``repeats`` runs of ``iterations`` L-BFGS iterations, ``chunk`` per call, in ms per iteration."""
    from keras import ops

    from model.backend import Tensor, to_tensor
    from model.optimisers import EarlyStop, Loss, lbfgs

    shape = (1, size, size, 3)
    rng = np.random.default_rng(0)
    centre = to_tensor(rng.uniform(-50, 50, shape))
    curvature = to_tensor(rng.uniform(0.01, 1.0, shape))  # condition number 100: no early minimum

    def quadratic(pixels: Tensor, centre: Tensor, curvature: Tensor) -> tuple[Tensor, Tensor]:
        error = pixels - centre
        return 0.5 * ops.sum(curvature * error * error), curvature * error

    loss = Loss(quadratic, (centre, curvature))
    start = np.zeros(shape, np.float32)

    def run(count: int) -> int:
        done = [0]
        lbfgs(loss, start, count, lambda iteration, _: done.__setitem__(0, iteration), EarlyStop(0), chunk=chunk)
        return done[0]

    run(5)  # compiles
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        done = run(iterations)
        best = min(best, (time.perf_counter() - started) / done * 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,512", help="comma-separated picture sides, in pixels")
    args = parser.parse_args()
    try:
        sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    except ValueError:
        parser.error(f"--sizes takes whole numbers separated by commas, such as 64,512, got: {args.sizes}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from model.optimisers import GPU_CHUNK

    print(f"L-BFGS's own cost, Keras backend {keras.backend.backend()}, {os.cpu_count()} CPUs")
    print(f"| size | ms per iteration, 1 per call | {GPU_CHUNK} per call |")
    print("|---|---|---|")
    for size in sizes:
        print(f"| {size} | {per_iteration_ms(size, 1):.2f} | {per_iteration_ms(size, GPU_CHUNK):.2f} |", flush=True)


if __name__ == "__main__":
    main()
