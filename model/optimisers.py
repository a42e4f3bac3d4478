"""The optimisers that move a picture's pixels down the loss: L-BFGS and Adam.

Both work on preprocessed pixels (1, H, W, 3) float32, keep every pixel displayable, call
``after_iteration(iteration, loss)`` after each step, and stop early when ``EarlyStop`` says the
loss has stopped falling. ``LossAndGradient`` is the only thing they know of the render.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np
import scipy.optimize

from model.errors import ModelError
from model.network import pixel_bounds

# Pixels (1, H, W, 3) float32 -> (loss, gradient shaped like the pixels, float32).
LossAndGradient = Callable[[np.ndarray], tuple[float, np.ndarray]]
AfterIteration = Callable[[int, float], None]

# L-BFGS memory (pairs of vectors kept): SciPy's default. 30 lowered the loss of a 60-iteration
# render by under 1% for the same evaluations; each pair costs 2 * 8 bytes per pixel channel.
LBFGS_MEMORY = 10

# The TensorFlow tutorial's Adam ("Neural style transfer"), for pixels in 0..1.
ADAM_BETA1 = 0.99
ADAM_BETA2 = 0.999
ADAM_EPSILON = 0.1


class EarlyStop:
    """Says stop once the loss fell by less than ``tolerance`` (a fraction) over ``window`` steps."""

    def __init__(self, tolerance: float, window: int = 10) -> None:
        self.tolerance = tolerance
        self._losses: deque[float] = deque(maxlen=window + 1)

    def should_stop(self, loss: float) -> bool:
        self._losses.append(loss)
        if self.tolerance <= 0 or len(self._losses) < self._losses.maxlen:  # type: ignore[operator]
            return False
        first = self._losses[0]
        return first > 0 and (first - loss) / first < self.tolerance


def lbfgs(
    loss_and_gradient: LossAndGradient,
    start: np.ndarray,
    iterations: int,
    after_iteration: AfterIteration,
    early_stop: EarlyStop,
) -> np.ndarray:
    """L-BFGS-B from ``start`` for at most ``iterations`` iterations; returns where it ends.

    SciPy's line search costs about one evaluation per iteration here (neural-style's Torch
    L-BFGS does exactly one, with no line search).
    """
    shape = start.shape
    x0 = start.astype(np.float64).reshape(-1)

    def evaluate(x: np.ndarray) -> tuple[float, np.ndarray]:
        # SciPy works in float64, the network in float32.
        loss, gradient = loss_and_gradient(x.reshape(shape).astype(np.float32))
        return loss, np.asarray(gradient, np.float64).reshape(-1)

    first = evaluate(x0)
    # With every pixel bounded, L-BFGS-B's first step is the raw gradient, which here moves the
    # pixels by a ten-thousandth of a level: a change float32 cannot see, so the line search
    # can stall at once. Scaling the loss so that the first step moves the steepest pixel by one
    # level fixes that and changes nothing else: later steps follow the measured curvature.
    scale = 1.0 / max(float(np.max(np.abs(first[1]))), 1e-30)
    done = 0

    def scaled(x: np.ndarray) -> tuple[float, np.ndarray]:
        loss, gradient = first if np.array_equal(x, x0) else evaluate(x)
        return loss * scale, gradient * scale

    def callback(intermediate_result: scipy.optimize.OptimizeResult) -> None:
        # SciPy passes the new-style result only to a parameter named exactly so, and ends the
        # minimisation when the callback raises StopIteration.
        nonlocal done
        done += 1
        loss = float(intermediate_result.fun) / scale
        after_iteration(done, loss)
        if early_stop.should_stop(loss):
            raise StopIteration

    low, high = pixel_bounds()
    pixel_count = shape[1] * shape[2]
    result = scipy.optimize.minimize(
        scaled,
        x0,
        jac=True,
        method="L-BFGS-B",
        # Bounds keep every pixel displayable, and cost no more evaluations than clipping after.
        bounds=scipy.optimize.Bounds(np.tile(low, pixel_count), np.tile(high, pixel_count)),
        callback=callback,
        # gtol=0: SciPy's gradient test is absolute and would stop a render of small loss; the
        # iterations asked for (or a stalled loss) end the render instead.
        options={"maxiter": iterations, "maxcor": LBFGS_MEMORY, "gtol": 0.0},
    )
    if not np.all(np.isfinite(result.x)):
        raise ModelError(f"the render diverged: {result.message}")
    return np.asarray(result.x, np.float32).reshape(shape)


def adam(
    loss_and_gradient: LossAndGradient,
    start: np.ndarray,
    iterations: int,
    after_iteration: AfterIteration,
    early_stop: EarlyStop,
    learning_rate: float,
) -> np.ndarray:
    """Adam from ``start``, as the TensorFlow tutorial runs it, for at most ``iterations`` steps.

    The tutorial's pixels are 0..1, ours 0..255 (minus the mean): its ``learning_rate`` and
    epsilon are kept in its units by stepping on the gradient with respect to 0..1 pixels and
    scaling the step back by 255. The update is Keras' Adam (epsilon outside the bias
    correction); pixels are clipped to the displayable range after each step, as the tutorial
    clips to 0..1. ``after_iteration`` gets the loss before each step.
    """
    low, high = pixel_bounds()
    pixels = start.astype(np.float32).copy()
    first_moment = np.zeros_like(pixels)
    second_moment = np.zeros_like(pixels)
    for step in range(1, iterations + 1):
        loss, gradient = loss_and_gradient(pixels)
        gradient = 255.0 * np.asarray(gradient, np.float32)  # d loss / d (pixel / 255)
        first_moment = ADAM_BETA1 * first_moment + (1 - ADAM_BETA1) * gradient
        second_moment = ADAM_BETA2 * second_moment + (1 - ADAM_BETA2) * np.square(gradient)
        alpha = learning_rate * np.sqrt(1 - ADAM_BETA2**step) / (1 - ADAM_BETA1**step)
        pixels -= 255.0 * alpha * first_moment / (np.sqrt(second_moment) + ADAM_EPSILON)
        np.clip(pixels, low, high, out=pixels)
        if not np.isfinite(loss):
            raise ModelError("the render diverged: the loss is not a number")
        after_iteration(step, loss)
        if early_stop.should_stop(loss):
            break
    return pixels
