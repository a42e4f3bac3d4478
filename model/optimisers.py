"""The optimisers that move a picture's pixels down the loss: L-BFGS and Adam.

Both work on preprocessed pixels (1, H, W, 3) float32, keep every pixel displayable, call
``after_iteration(iteration, loss)`` after each step, and stop early when ``EarlyStop`` says the
loss has stopped falling. ``LossAndGradient`` is the only thing they know of the render.

The pixels, gradients and L-BFGS's history stay tensors of the Keras backend, on its device (a
GPU where there is one), and each step's arithmetic is one compiled function
(``model.backend.compiled``): only the loss and a yes or no come back to Python each iteration.
On an H100 the same steps done in NumPy took 16 ms per 512 px iteration, more than five times the
network's forward and backward pass (2.8 ms), and moving the pixels to and fro 2 ms more.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
from keras import ops

from model.backend import Tensor, compiled, to_numpy, to_tensor
from model.errors import ModelError
from model.network import pixel_bounds

# Pixels (1, H, W, 3), a backend tensor -> (loss, a scalar tensor or float; gradient shaped like
# the pixels, a tensor or array).
LossAndGradient = Callable[[Tensor], tuple[Any, Any]]
AfterIteration = Callable[[int, float], None]
# L-BFGS's memory: its last steps (changes of the pixels) and their changes in gradient, each
# (memory, pixels) oldest first, and 1 / each pair's curvature (memory,). Pairs not yet made are
# zeros with a curvature of 0: the recursion skips them.
History = tuple[Tensor, Tensor, Tensor]

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
    preconditioner: np.ndarray | None = None,
) -> np.ndarray:
    """L-BFGS from ``start`` for at most ``iterations`` iterations; returns where it ends.

    As neural-style runs Torch's L-BFGS: one evaluation per iteration, no line search. Each
    step is the two-loop recursion's (Nocedal and Wright, algorithm 7.4) over the last
    ``memory`` steps, scaled by the latest curvature, then projected onto the displayable
    pixels. Only a step that raises the loss is halved and evaluated again, so the loss never
    rises. The first step, with no curvature known yet, moves the pixels by ``FIRST_STEP``
    levels (root mean square).

    ``preconditioner``, positive and broadcastable to the pixels, shapes the first estimate of
    the inverse Hessian (the recursion's ``H0``): a pixel weighed 0.5 where the loss is twice
    as stiff as elsewhere is stepped as far as the rest. None is 1 everywhere. Raises
    ``ValueError`` if it is not positive and finite everywhere (the steps would not go downhill).
    """
    if preconditioner is not None and not np.all(np.isfinite(preconditioner) & (np.asarray(preconditioner) > 0)):
        raise ValueError("the preconditioner must be positive and finite at every pixel")
    kernels = _kernels()
    low, high = (to_tensor(bound) for bound in pixel_bounds())
    diagonal = to_tensor(np.broadcast_to(1.0 if preconditioner is None else preconditioner, start.shape))
    pixels = kernels.clip(to_tensor(start), low, high)
    loss, gradient = _evaluate(loss_and_gradient, pixels)
    size = int(np.prod(start.shape))
    history: History = (
        to_tensor(np.zeros((memory, size), np.float32)),
        to_tensor(np.zeros((memory, size), np.float32)),
        to_tensor(np.zeros(memory, np.float32)),
    )
    step = kernels.direction(pixels, gradient, history, diagonal, low, high)
    for iteration in range(1, iterations + 1):
        for _ in range(MAX_HALVINGS + 1):
            moved, moves = kernels.move(pixels, step, low, high)
            # Evaluated before asking whether any pixel moved: the answer waits for the device,
            # and the evaluation is on its way to it by then. One wait per try, not two.
            new_loss, new_gradient = _evaluate(loss_and_gradient, moved)
            if not bool(moves):
                return to_numpy(pixels)  # no pixel can move down the loss: a minimum, within the bounds
            if new_loss <= loss:
                break
            step = step * 0.5
        else:
            # No step along this direction lowers the loss: the render is as good as it gets.
            break
        history, step = kernels.advance(history, pixels, moved, gradient, new_gradient, diagonal, low, high)
        pixels, loss, gradient = moved, new_loss, new_gradient
        after_iteration(iteration, loss)
        if early_stop.should_stop(loss):
            break
    return to_numpy(pixels)


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
    kernels = _kernels()
    low, high = (to_tensor(bound) for bound in pixel_bounds())
    pixels = to_tensor(start)
    first_moment = to_tensor(np.zeros(start.shape, np.float32))
    second_moment = to_tensor(np.zeros(start.shape, np.float32))
    rate = to_tensor(learning_rate)
    for step in range(1, iterations + 1):
        loss, gradient = _evaluate(loss_and_gradient, pixels)
        pixels, first_moment, second_moment = kernels.adam(
            pixels, gradient, first_moment, second_moment, to_tensor(step), rate, low, high
        )
        after_iteration(step, loss)
        if early_stop.should_stop(loss):
            break
    return to_numpy(pixels)


def _evaluate(loss_and_gradient: LossAndGradient, pixels: Tensor) -> tuple[float, Tensor]:
    """The loss (a float) and gradient (a float32 tensor) at ``pixels``; ``ModelError`` if the loss is not finite."""
    loss, gradient = loss_and_gradient(pixels)
    loss = float(loss)
    if not np.isfinite(loss):
        raise ModelError("the render diverged: the loss is not a number")
    return loss, to_tensor(gradient)


@functools.cache
def _kernels() -> SimpleNamespace:
    """The optimisers' steps, compiled for the Keras backend (once per process)."""
    return SimpleNamespace(
        clip=compiled(_clip),
        direction=compiled(_lbfgs_direction),
        move=compiled(_move),
        advance=compiled(_advance),
        adam=compiled(_adam_step),
    )


def _clip(pixels: Tensor, low: Tensor, high: Tensor) -> Tensor:
    return ops.minimum(ops.maximum(pixels, low), high)


def _lbfgs_direction(
    pixels: Tensor, gradient: Tensor, history: History, preconditioner: Tensor, low: Tensor, high: Tensor
) -> Tensor:
    """The L-BFGS step: minus the history's inverse-Hessian estimate times the gradient.

    The estimate starts from ``preconditioner`` (shaped like the pixels) times a scalar.
    Pixels at a bound that the gradient pushes beyond it are held there: the step is sought
    among the others (a projected quasi-Newton step), and is zero at them.
    """
    held = ops.logical_or(
        ops.logical_and(pixels <= low, gradient > 0), ops.logical_and(pixels >= high, gradient < 0)
    )
    direction = ops.reshape(ops.where(held, 0.0, gradient), (-1,))
    changes, gradient_changes, rhos = history
    memory = changes.shape[0]
    alphas = []
    for k in reversed(range(memory)):  # newest first
        alpha = rhos[k] * ops.sum(changes[k] * direction)
        direction = direction - alpha * gradient_changes[k]
        alphas.append(alpha)
    # H0 = the preconditioner times the newest pair's curvature or, with none yet, times what
    # makes a first step of FIRST_STEP levels.
    diagonal = ops.reshape(preconditioner, (-1,))
    direction = diagonal * direction
    newest_change, newest_gradient_change = changes[-1], gradient_changes[-1]
    curvature_scale = ops.sum(newest_change * newest_gradient_change) / ops.maximum(
        ops.sum(diagonal * ops.square(newest_gradient_change)), 1e-30
    )
    first_scale = FIRST_STEP / ops.maximum(ops.sqrt(ops.mean(ops.square(direction))), 1e-30)
    direction = direction * ops.where(rhos[-1] > 0, curvature_scale, first_scale)
    for k, alpha in zip(range(memory), reversed(alphas)):  # oldest first
        beta = rhos[k] * ops.sum(gradient_changes[k] * direction)
        direction = direction + (alpha - beta) * changes[k]
    return ops.where(held, 0.0, -ops.reshape(direction, ops.shape(pixels)))


def _move(pixels: Tensor, step: Tensor, low: Tensor, high: Tensor) -> tuple[Tensor, Tensor]:
    """The pixels after ``step``, within the bounds, and whether any of them moved."""
    moved = _clip(pixels + step, low, high)
    return moved, ops.any(ops.not_equal(moved, pixels))


def _remember(history: History, pixels: Tensor, moved: Tensor, gradient: Tensor, new_gradient: Tensor) -> History:
    """The history with the step from ``pixels`` to ``moved`` added as its newest pair (the oldest dropped).

    A pair of non-positive curvature (or a step lost to rounding) would spoil the inverse-Hessian
    estimate: it is left out, and the history comes back unchanged.
    """
    changes, gradient_changes, rhos = history
    change = ops.reshape(moved - pixels, (1, -1))
    gradient_change = ops.reshape(new_gradient - gradient, (1, -1))
    curvature = ops.sum(change * gradient_change)
    keep = curvature > 1e-10 * ops.sum(ops.square(gradient_change))
    rho = ops.reshape(1.0 / ops.where(keep, curvature, 1.0), (1,))
    return (
        ops.where(keep, ops.concatenate([changes[1:], change], axis=0), changes),
        ops.where(keep, ops.concatenate([gradient_changes[1:], gradient_change], axis=0), gradient_changes),
        ops.where(keep, ops.concatenate([rhos[1:], rho], axis=0), rhos),
    )


def _advance(
    history: History,
    pixels: Tensor,
    moved: Tensor,
    gradient: Tensor,
    new_gradient: Tensor,
    preconditioner: Tensor,
    low: Tensor,
    high: Tensor,
) -> tuple[History, Tensor]:
    """After a step from ``pixels`` to ``moved``: the history with it (``_remember``) and the next step from ``moved``."""
    history = _remember(history, pixels, moved, gradient, new_gradient)
    return history, _lbfgs_direction(moved, new_gradient, history, preconditioner, low, high)


def _adam_step(
    pixels: Tensor,
    gradient: Tensor,
    first_moment: Tensor,
    second_moment: Tensor,
    step: Tensor,
    learning_rate: Tensor,
    low: Tensor,
    high: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """One step of Keras' Adam in the tutorial's units (pixels 0..1), clipped to the bounds."""
    gradient = 255.0 * gradient  # d loss / d (pixel / 255)
    first_moment = ADAM_BETA1 * first_moment + (1 - ADAM_BETA1) * gradient
    second_moment = ADAM_BETA2 * second_moment + (1 - ADAM_BETA2) * ops.square(gradient)
    alpha = learning_rate * ops.sqrt(1 - ops.power(ADAM_BETA2, step)) / (1 - ops.power(ADAM_BETA1, step))
    pixels = pixels - 255.0 * alpha * first_moment / (ops.sqrt(second_moment) + ADAM_EPSILON)
    return _clip(pixels, low, high), first_moment, second_moment
