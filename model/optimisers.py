"""The optimisers that move a picture's pixels down the loss: L-BFGS and Adam.

Both work on preprocessed pixels (1, H, W, 3) float32, keep every pixel displayable, call
``after_iteration(iteration, loss)`` after each step, and stop early when ``EarlyStop`` says the
loss has stopped falling. ``LossAndGradient`` is the only thing they know of the render.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from model.errors import ModelError
from model.network import pixel_bounds

# Pixels (1, H, W, 3) float32 -> (loss, gradient shaped like the pixels, float32).
LossAndGradient = Callable[[np.ndarray], tuple[float, np.ndarray]]
AfterIteration = Callable[[int, float], None]

# L-BFGS memory (pairs of vectors kept), as SciPy's default: 30 gave a 40-iteration 256 px render
# the same loss (1.761 against 1.760). Each pair costs 2 * 4 bytes per pixel channel.
LBFGS_MEMORY = 10
# L-BFGS's first step, in levels (root mean square over the pixels). Raised from about 0.06
# (SciPy's first step here) to 4, a 20 + 10 iteration 512 px render ended at loss 4.93 instead
# of 5.36: its full-size stage starts from an enlarged picture, and a timid first step wasted
# one of its ten iterations.
FIRST_STEP = 4.0
# A step that raises the loss is halved at most this many times.
MAX_HALVINGS = 10

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
    memory: int = LBFGS_MEMORY,
) -> np.ndarray:
    """L-BFGS from ``start`` for at most ``iterations`` iterations; returns where it ends.

    As neural-style runs Torch's L-BFGS: one evaluation per iteration, no line search. Each
    step is the two-loop recursion's (Nocedal and Wright, algorithm 7.4) over the last
    ``memory`` steps, scaled by the latest curvature, then projected onto the displayable
    pixels. Only a step that raises the loss is halved and evaluated again, so the loss never
    rises. The first step, with no curvature known yet, moves the pixels by ``FIRST_STEP``
    levels (root mean square).
    """
    low, high = (bound.astype(np.float32) for bound in pixel_bounds())
    pixels = np.clip(start.astype(np.float32), low, high)
    loss, gradient = _evaluate(loss_and_gradient, pixels)
    history: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=memory)
    for iteration in range(1, iterations + 1):
        # Pixels at a bound that the gradient pushes beyond it are held there: the step is
        # sought among the others (a projected quasi-Newton step).
        held = ((pixels <= low) & (gradient > 0)) | ((pixels >= high) & (gradient < 0))
        step = _lbfgs_direction(np.where(held, 0, gradient).reshape(-1), history).reshape(pixels.shape)
        step[held] = 0
        for _ in range(MAX_HALVINGS + 1):
            moved = np.clip(pixels + step, low, high)
            if np.array_equal(moved, pixels):
                return pixels  # no pixel can move down the loss: a minimum, within the bounds
            new_loss, new_gradient = _evaluate(loss_and_gradient, moved)
            if new_loss <= loss:
                break
            step *= 0.5
        else:
            # No step along this direction lowers the loss: the render is as good as it gets.
            break
        change = (moved - pixels).reshape(-1)
        change_in_gradient = (new_gradient - gradient).reshape(-1)
        curvature = float(np.dot(change, change_in_gradient))
        # A pair of non-positive curvature (or a step lost to rounding) would spoil the
        # inverse-Hessian estimate: it is left out.
        if curvature > 1e-10 * float(np.dot(change_in_gradient, change_in_gradient)):
            history.append((change, change_in_gradient, 1.0 / curvature))
        pixels, loss, gradient = moved, new_loss, new_gradient
        after_iteration(iteration, loss)
        if early_stop.should_stop(loss):
            break
    return pixels


def _evaluate(loss_and_gradient: LossAndGradient, pixels: np.ndarray) -> tuple[float, np.ndarray]:
    """The loss (a float) and gradient (float32) at ``pixels``; ``ModelError`` if the loss is not finite."""
    loss, gradient = loss_and_gradient(pixels)
    if not np.isfinite(loss):
        raise ModelError("the render diverged: the loss is not a number")
    return float(loss), np.asarray(gradient, np.float32)


def _lbfgs_direction(gradient: np.ndarray, history: deque[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
    """The L-BFGS step: minus the inverse-Hessian estimate of ``history`` times ``gradient`` (flat)."""
    direction = gradient.copy()
    if not history:
        rms = float(np.sqrt(np.mean(np.square(direction, dtype=np.float64))))
        return -direction * (FIRST_STEP / max(rms, 1e-30))
    alphas = []
    for change, change_in_gradient, rho in reversed(history):
        alpha = rho * float(np.dot(change, direction))
        direction -= alpha * change_in_gradient
        alphas.append(alpha)
    change, change_in_gradient, _ = history[-1]
    direction *= float(np.dot(change, change_in_gradient)) / float(np.dot(change_in_gradient, change_in_gradient))
    for (change, change_in_gradient, rho), alpha in zip(history, reversed(alphas)):
        beta = rho * float(np.dot(change_in_gradient, direction))
        direction += (alpha - beta) * change
    return -direction


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
    first_moment: np.ndarray = np.zeros_like(pixels)
    second_moment: np.ndarray = np.zeros_like(pixels)
    for step in range(1, iterations + 1):
        loss, gradient = _evaluate(loss_and_gradient, pixels)
        gradient = 255.0 * gradient  # d loss / d (pixel / 255)
        first_moment = ADAM_BETA1 * first_moment + (1 - ADAM_BETA1) * gradient
        second_moment = ADAM_BETA2 * second_moment + (1 - ADAM_BETA2) * np.square(gradient)
        alpha = learning_rate * np.sqrt(1 - ADAM_BETA2**step) / (1 - ADAM_BETA1**step)
        pixels -= 255.0 * alpha * first_moment / (np.sqrt(second_moment) + ADAM_EPSILON)
        np.clip(pixels, low, high, out=pixels)
        after_iteration(step, loss)
        if early_stop.should_stop(loss):
            break
    return pixels
