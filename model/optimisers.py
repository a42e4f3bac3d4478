"""The optimisers that move a picture's pixels down the loss: L-BFGS and Adam.

Both work on preprocessed pixels (1, H, W, 3) float32, keep every pixel displayable, call
``after_iteration(iteration, loss)`` after each step, and stop early when ``EarlyStop`` says the
loss has stopped falling. ``Loss`` is the only thing they know of the render.

The pixels, gradients and L-BFGS's history stay tensors of the Keras backend, on its device (a
GPU where there is one). L-BFGS's iterations, the loss's evaluations among them, run as one
compiled program (``model.backend.compiled``) that does ``chunk`` iterations per call: only their
losses come back to Python, for the progress callback and the early stop (on a GPU, the same
steps in NumPy cost more than the network's pass: bench/NOTES.md).
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, NamedTuple

import numpy as np
from keras import ops

from model.backend import Tensor, compiled, on_gpu, to_numpy, to_tensor
from model.errors import ModelError
from model.network import pixel_bounds

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
# L-BFGS iterations per call of its compiled program on a GPU, where an iteration takes
# milliseconds and a call and its wait for the device a good part of one. On a CPU one per call:
# an iteration takes a second or more, and progress and early stopping then see every one at once.
GPU_CHUNK = 10

# How L-BFGS's compiled iterations end: still going, or why not.
_TRYING, _RUNNING, _AT_MINIMUM, _NO_DESCENT, _DIVERGED = -1, 0, 1, 2, 3

# The TensorFlow tutorial's Adam ("Neural style transfer"), for pixels in 0..1.
ADAM_BETA1 = 0.99
ADAM_BETA2 = 0.999
ADAM_EPSILON = 0.1


@dataclass(frozen=True)
class Loss:
    """What the optimisers minimise: ``function(pixels, *arguments)`` -> (loss, gradient).

    The pixels are (1, H, W, 3) float32 tensors of the backend; the loss is a float32 scalar and
    the gradient is shaped like the pixels. ``function`` is written with ``keras.ops`` or compiled
    for the backend (``model.backend.compiled``, or the renderer's ``tf.function``), so that
    L-BFGS can compile it into its own iterations. ``arguments`` (tensors, arrays, lists of them)
    are what it takes besides the pixels: passed in, not captured, so that a compiled program
    does not bake them in as constants (the network's weights are 58 MB).
    """

    function: Callable[..., tuple[Tensor, Tensor]]
    arguments: tuple[Any, ...] = ()

    def __call__(self, pixels: Tensor) -> tuple[Tensor, Tensor]:
        return self.function(pixels, *self.arguments)


class Optimised(NamedTuple):
    """Where an optimiser ended, (1, H, W, 3) float32, and how many times it evaluated the loss."""

    pixels: np.ndarray
    evaluations: int


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
    loss: Loss,
    start: np.ndarray,
    iterations: int,
    after_iteration: AfterIteration,
    early_stop: EarlyStop,
    memory: int = LBFGS_MEMORY,
    preconditioner: np.ndarray | None = None,
    chunk: int | None = None,
) -> Optimised:
    """L-BFGS from ``start`` for at most ``iterations`` iterations: where it ends.

    As neural-style runs Torch's L-BFGS: one evaluation per iteration, no line search. Each
    step is the two-loop recursion's (Nocedal and Wright, algorithm 7.4) over the last
    ``memory`` steps, scaled by the latest curvature, then projected onto the displayable
    pixels. Only a step that raises the loss is halved and evaluated again, so the loss never
    rises. The first step, with no curvature known yet, moves the pixels by ``FIRST_STEP``
    levels (root mean square). It stops early at a minimum within the bounds (no pixel can
    move) and where no halving of a step lowers the loss.

    The iterations run on the device, ``chunk`` per call (``GPU_CHUNK`` on a GPU, 1 elsewhere);
    ``after_iteration`` and ``early_stop`` then see each one's loss in turn, so with chunks of
    more than one an early stop comes at the end of the chunk it falls in.

    ``preconditioner``, positive and broadcastable to the pixels, shapes the first estimate of
    the inverse Hessian (the recursion's ``H0``): a pixel weighed 0.5 where the loss is twice
    as stiff as elsewhere is stepped as far as the rest. None is 1 everywhere. Raises
    ``ValueError`` if it is not positive and finite everywhere (the steps would not go downhill)
    or ``chunk`` is not a whole number from 1, ``ModelError`` if the loss is not a number.
    """
    if preconditioner is not None and not np.all(np.isfinite(preconditioner) & (np.asarray(preconditioner) > 0)):
        raise ValueError("the preconditioner must be positive and finite at every pixel")
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise ValueError(f"chunk must be a whole number of iterations, at least 1, got: {chunk!r}")
    chunk = chunk or (GPU_CHUNK if on_gpu() else 1)
    kernels = _kernels()
    low, high = (to_tensor(bound) for bound in pixel_bounds())
    diagonal = to_tensor(np.broadcast_to(1.0 if preconditioner is None else preconditioner, start.shape))
    pixels = kernels.clip(to_tensor(start), low, high)
    size = int(np.prod(start.shape))
    history: History = (
        to_tensor(np.zeros((memory, size), np.float32)),
        to_tensor(np.zeros((memory, size), np.float32)),
        to_tensor(np.zeros(memory, np.float32)),
    )
    # No loss yet: the first call evaluates the start before its first iteration (_iterate).
    gradient, step = (to_tensor(np.zeros(start.shape, np.float32)) for _ in range(2))
    state = (pixels, to_tensor(np.inf), gradient, history, step)
    iterate = _lbfgs_iterations(loss.function)
    no_losses = to_tensor(np.zeros(chunk, np.float32))
    done = evaluations = 0
    while done < iterations:
        count = ops.convert_to_tensor(min(chunk, iterations - done), "int32")
        state, losses, counts = iterate(state, count, no_losses, diagonal, low, high, loss.arguments)
        performed, tried, status = (int(n) for n in to_numpy(counts))
        evaluations += tried
        stop = status != _RUNNING
        for value in to_numpy(losses)[:performed]:
            done += 1
            after_iteration(done, float(value))
            stop = early_stop.should_stop(float(value)) or stop
        if status == _DIVERGED:
            raise ModelError("the render diverged: the loss is not a number")
        if stop:
            break
    return Optimised(to_numpy(state[0]), evaluations)


def adam(
    loss: Loss,
    start: np.ndarray,
    iterations: int,
    after_iteration: AfterIteration,
    early_stop: EarlyStop,
    learning_rate: float,
) -> Optimised:
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
    step = 0
    for step in range(1, iterations + 1):
        value, gradient = _evaluate(loss, pixels)
        pixels, first_moment, second_moment = kernels.adam(
            pixels, gradient, first_moment, second_moment, to_tensor(step), rate, low, high
        )
        after_iteration(step, value)
        if early_stop.should_stop(value):
            break
    return Optimised(to_numpy(pixels), step)


def _evaluate(loss: Loss, pixels: Tensor) -> tuple[float, Tensor]:
    """The loss (a float) and gradient (a float32 tensor) at ``pixels``; ``ModelError`` if the loss is not finite."""
    value, gradient = loss(pixels)
    value = float(value)
    if not np.isfinite(value):
        raise ModelError("the render diverged: the loss is not a number")
    return value, to_tensor(gradient)


@functools.cache
def _kernels() -> SimpleNamespace:
    """The optimisers' steps, compiled for the Keras backend (once per process)."""
    return SimpleNamespace(clip=compiled(_clip), adam=compiled(_adam_step))


# A few losses at a time: a renderer has one per choice of layers, and its programs are kept.
@functools.lru_cache(maxsize=8)
def _lbfgs_iterations(function: Callable[..., tuple[Tensor, Tensor]]) -> Callable[..., Any]:
    """L-BFGS's iterations on ``function``'s loss, compiled: see ``_iterate``."""
    # The state is given up: its history (80 bytes per pixel channel) is updated in place.
    return compiled(functools.partial(_iterate, function), donate=(0,))


def _iterate(
    function: Callable[..., tuple[Tensor, Tensor]],
    state: tuple[Tensor, Tensor, Tensor, History, Tensor],
    count: Tensor,
    no_losses: Tensor,
    preconditioner: Tensor,
    low: Tensor,
    high: Tensor,
    arguments: tuple[Any, ...],
) -> tuple[tuple[Tensor, Tensor, Tensor, History, Tensor], Tensor, Tensor]:
    """Up to ``count`` L-BFGS iterations from ``state`` (pixels, loss, gradient, history, step).

    Returns the state after them, their losses (in ``no_losses``' first places) and, as int32,
    how many were done, how many times the loss was evaluated, and how they ended (``_RUNNING``
    if none of the reasons to stop came up). Each iteration moves the pixels by the step and
    evaluates the loss there, halving the step while that raises the loss (``lbfgs``).

    A state with an infinite loss (none known yet; a zero gradient and step) is first evaluated
    where it is, by the same code as the tries: a step of zero, taken whatever the loss, and not
    an iteration; its pair of changes, zero, is not remembered, and the first step follows from
    its gradient. So the loss and its gradient are compiled once, here. (On TensorFlow, a
    compiled loss called inside this program is compiled again for it: 3.5 s at 200 px on 2
    cores, which a first evaluation of its own would add to each new picture size.)
    """

    def iteration(
        done: Tensor, status: Tensor, tried: Tensor, losses: Tensor, pixels: Tensor, loss: Tensor,
        gradient: Tensor, history: History, step: Tensor,
    ) -> tuple[Any, ...]:
        def trying(tries: Tensor, status: Tensor, *_: Any) -> Tensor:
            return status == _TRYING

        def try_step(
            tries: Tensor, status: Tensor, tried: Tensor, step: Tensor, *_: Any
        ) -> tuple[Any, ...]:
            moved, moves = _move(pixels, step, low, high)
            new_loss, new_gradient = function(moved, *arguments)
            new_loss = ops.cast(new_loss, "float32")
            # Each outcome overrides the ones above it.
            status = ops.where(tries >= MAX_HALVINGS, _NO_DESCENT, _TRYING)
            status = ops.where(new_loss <= loss, _RUNNING, status)
            no_pixel_moved = ops.logical_and(ops.logical_not(moves), ops.isfinite(loss))
            status = ops.where(no_pixel_moved, _AT_MINIMUM, status)  # a minimum, within the bounds
            status = ops.where(ops.isfinite(new_loss), status, _DIVERGED)
            return tries + 1, status, tried + 1, step * 0.5, moved, new_loss, ops.cast(new_gradient, "float32")

        start = (_int(0), _int(_TRYING), tried, step, pixels, loss, gradient)
        _, status, tried, _, moved, new_loss, new_gradient = ops.while_loop(trying, try_step, start)

        # Where the step failed, the loop ends here: the pixels, loss and gradient stay as they
        # were, and the history and step, never used again, are left as they come out. (A
        # conditional around the update instead costs JAX a copy of the history per call.)
        accepted = status == _RUNNING
        an_iteration = ops.logical_and(accepted, ops.isfinite(loss))  # not the start's evaluation
        history, next_step = _advance(history, pixels, moved, gradient, new_gradient, preconditioner, low, high)
        losses = ops.where(ops.logical_and(an_iteration, ops.arange(ops.shape(losses)[0]) == done), new_loss, losses)
        pixels = ops.where(accepted, moved, pixels)
        loss = ops.where(accepted, new_loss, loss)
        gradient = ops.where(accepted, new_gradient, gradient)
        done = done + ops.cast(an_iteration, "int32")
        return done, status, tried, losses, pixels, loss, gradient, history, next_step

    def going(done: Tensor, status: Tensor, *_: Any) -> Tensor:
        return ops.logical_and(done < count, status == _RUNNING)

    pixels, loss, gradient, history, step = state
    start = (_int(0), _int(_RUNNING), _int(0), no_losses, pixels, loss, gradient, history, step)
    done, status, tried, losses, pixels, loss, gradient, history, step = ops.while_loop(going, iteration, start)
    return (pixels, loss, gradient, history, step), losses, ops.stack([done, tried, status])


def _int(value: int) -> Tensor:
    return ops.convert_to_tensor(value, "int32")


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
