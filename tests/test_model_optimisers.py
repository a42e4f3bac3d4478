"""The optimisers on functions whose minimum is known: L-BFGS's one evaluation per iteration,
its bounds, its halving of steps that raise the loss, and where it stops. (Early stopping is
tested on real renders, in test_model_render.py.)"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from model.errors import ModelError
from model.network import pixel_bounds
from model.optimisers import FIRST_STEP, EarlyStop, adam, lbfgs

SHAPE = (1, 6, 5, 3)


class Quadratic:
    """0.5 * sum(curvature * (pixels - centre)^2), counting its evaluations."""

    def __init__(self, centre: np.ndarray, curvature: np.ndarray | float = 1.0) -> None:
        self.centre = centre.astype(np.float32)
        self.curvature = np.broadcast_to(np.asarray(curvature, np.float32), SHAPE)
        self.evaluations = 0

    def __call__(self, pixels) -> tuple[float, np.ndarray]:
        self.evaluations += 1
        error = np.asarray(pixels, np.float64) - self.centre  # the optimisers pass backend tensors
        loss = 0.5 * float(np.sum(self.curvature * error**2))
        return loss, (self.curvature * error).astype(np.float32)


def run_lbfgs(function, start, iterations, early_stop=0.0):
    losses: list[float] = []
    result = lbfgs(function, start, iterations, lambda i, loss: losses.append(loss), EarlyStop(early_stop))
    return result, losses


def test_lbfgs_finds_the_minimum_of_an_ill_conditioned_quadratic_within_the_pixel_bounds():
    rng = np.random.default_rng(0)
    low, high = pixel_bounds()
    # Half the centres lie beyond the displayable range: the answer there is the bound.
    centre = rng.uniform(low - 60, high + 60, SHAPE)
    curvature = rng.uniform(0.01, 1.0, SHAPE)  # condition number 100
    function = Quadratic(centre, curvature)
    result, _ = run_lbfgs(function, np.zeros(SHAPE, np.float32), 200)
    np.testing.assert_allclose(result, np.clip(centre, low, high), atol=0.05)
    assert np.all(result >= low) and np.all(result <= high)
    assert result.dtype == np.float32 and result.shape == SHAPE


def test_lbfgs_costs_one_evaluation_per_iteration_when_no_step_must_be_halved():
    centre = np.random.default_rng(1).uniform(-20, 20, SHAPE)
    function = Quadratic(centre, 0.1)
    # The first step moves the pixels FIRST_STEP levels towards the centre, short of it; the
    # second, scaled by the curvature the first measured, is Newton's: it lands on the centre.
    start = (centre + 5 * FIRST_STEP).astype(np.float32)
    result, losses = run_lbfgs(function, start, 8)
    np.testing.assert_allclose(result, centre, atol=1e-4)
    assert losses[1] < 1e-6
    # Then it stops once no pixel can move (a step more may mend float32 rounding).
    assert len(losses) <= 3
    # The start, one per iteration, and the try that found no pixel to move (evaluated while
    # that was being found out).
    assert function.evaluations == 1 + len(losses) + 1


def test_lbfgs_rarely_needs_a_second_evaluation_on_an_ill_conditioned_problem():
    rng = np.random.default_rng(4)
    function = Quadratic(rng.uniform(-50, 50, SHAPE), rng.uniform(0.01, 1.0, SHAPE))
    _, losses = run_lbfgs(function, np.zeros(SHAPE, np.float32), 30)
    assert len(losses) == 30
    assert function.evaluations <= 1 + 1.25 * 30


def test_a_step_that_raises_the_loss_is_halved_until_it_lowers_it():
    centre = np.zeros(SHAPE)
    function = Quadratic(centre, 1.0)
    # 0.1 levels from the centre, the first step of FIRST_STEP levels would land 3.9 beyond it.
    start = np.full(SHAPE, 0.1, np.float32)
    _, losses = run_lbfgs(function, start, 1)
    assert losses[0] < function(start)[0]
    # 4 -> 2 -> 1 -> 0.5 -> 0.25 -> 0.125 (the first below 0.2): the start and six tries.
    assert function.evaluations == 1 + 6 + 1  # and the call just above


def test_the_loss_never_rises_on_a_bumpy_function():
    def bumpy(pixels) -> tuple[float, np.ndarray]:
        x = np.asarray(pixels, np.float64) / 10
        loss = float(np.sum(x**2 + 3 * np.sin(3 * x) ** 2))
        gradient = (2 * x + 18 * np.sin(3 * x) * np.cos(3 * x)) / 10
        return loss, gradient.astype(np.float32)

    start = np.random.default_rng(2).uniform(-80, 80, SHAPE).astype(np.float32)
    _, losses = run_lbfgs(bumpy, start, 40)
    assert all(later <= earlier for earlier, later in itertools.pairwise(losses))
    assert losses[-1] < 0.5 * bumpy(start)[0]


def test_lbfgs_stops_at_a_minimum_it_cannot_improve_on():
    function = Quadratic(np.zeros(SHAPE))
    _, losses = run_lbfgs(function, np.zeros(SHAPE, np.float32), 50)
    assert losses == []  # no step lowers a loss of zero


@pytest.mark.parametrize("optimiser", ["lbfgs", "adam"])
def test_a_loss_that_is_not_a_number_is_a_clear_error(optimiser):
    def broken(pixels) -> tuple[float, np.ndarray]:
        return float("nan"), np.zeros(SHAPE, np.float32)

    start = np.zeros(SHAPE, np.float32)
    with pytest.raises(ModelError, match="diverged"):
        if optimiser == "lbfgs":
            lbfgs(broken, start, 5, lambda i, loss: None, EarlyStop(0))
        else:
            adam(broken, start, 5, lambda i, loss: None, EarlyStop(0), 0.02)


def test_adam_moves_towards_the_minimum_within_the_pixel_bounds():
    _, high = pixel_bounds()
    centre = np.broadcast_to(high + 50, SHAPE)  # beyond the top of every channel
    function = Quadratic(centre)
    result = adam(function, np.zeros(SHAPE, np.float32), 300, lambda i, loss: None, EarlyStop(0), 0.02)
    np.testing.assert_allclose(result, np.broadcast_to(high, SHAPE).astype(np.float32), atol=1e-3)


def test_a_preconditioner_that_matches_the_curvature_makes_the_second_step_newtons():
    rng = np.random.default_rng(5)
    centre = rng.uniform(-20, 20, SHAPE)
    curvature = rng.uniform(0.01, 1.0, SHAPE)  # condition number 100
    start = np.zeros(SHAPE, np.float32)

    def losses_with(preconditioner):
        losses: list[float] = []
        lbfgs(Quadratic(centre, curvature), start, 2, lambda i, loss: losses.append(loss), EarlyStop(0),
              preconditioner=preconditioner)
        return losses

    # The first step goes along the Newton direction, the second, scaled by the curvature the
    # first measured, lands on the centre; without it, two steps get nowhere near.
    assert losses_with(1.0 / curvature)[1] < 1e-6
    assert losses_with(None)[1] > 1.0


def test_a_preconditioner_of_ones_changes_nothing():
    rng = np.random.default_rng(6)
    function = Quadratic(rng.uniform(-50, 50, SHAPE), rng.uniform(0.01, 1.0, SHAPE))
    start = np.zeros(SHAPE, np.float32)
    plain = lbfgs(function, start, 10, lambda i, loss: None, EarlyStop(0))
    ones = lbfgs(function, start, 10, lambda i, loss: None, EarlyStop(0), preconditioner=np.ones(SHAPE[:-1] + (1,)))
    np.testing.assert_array_equal(plain, ones)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_a_preconditioner_that_is_not_positive_and_finite_is_refused(bad):
    preconditioner = np.ones(SHAPE, np.float32)
    preconditioner[0, 1, 2, 0] = bad
    with pytest.raises(ValueError, match="positive and finite"):
        lbfgs(Quadratic(np.zeros(SHAPE)), np.ones(SHAPE, np.float32), 3, lambda i, loss: None, EarlyStop(0),
              preconditioner=preconditioner)
