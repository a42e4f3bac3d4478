"""The optimisers on functions whose minimum is known: L-BFGS's one evaluation per iteration,
its bounds, its halving of steps that raise the loss, and where it stops, one iteration or
several per call of its compiled program. (Early stopping is tested on real renders, in
test_model_render.py.)"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from keras import ops

from model.backend import to_tensor
from model.errors import ModelError
from model.network import pixel_bounds
from model.optimisers import FIRST_STEP, EarlyStop, Loss, Optimised, adam, lbfgs

SHAPE = (1, 6, 5, 3)


def quadratic(pixels, centre, curvature):
    """0.5 * sum(curvature * (pixels - centre)^2) and its gradient."""
    error = pixels - centre
    return 0.5 * ops.sum(curvature * error * error), curvature * error


def quadratic_loss(centre: np.ndarray, curvature: np.ndarray | float = 1.0) -> Loss:
    curvature = np.broadcast_to(np.asarray(curvature, np.float32), SHAPE)
    return Loss(quadratic, (to_tensor(centre), to_tensor(curvature)))


def bumpy(pixels):
    x = pixels / 10
    loss = ops.sum(x * x + 3 * ops.sin(3 * x) ** 2)
    return loss, (2 * x + 18 * ops.sin(3 * x) * ops.cos(3 * x)) / 10


def run_lbfgs(function, start, iterations, early_stop=0.0, chunk=None) -> tuple[Optimised, list[float]]:
    losses: list[float] = []
    result = lbfgs(function, start, iterations, lambda i, loss: losses.append(loss), EarlyStop(early_stop), chunk=chunk)
    return result, losses


def test_lbfgs_finds_the_minimum_of_an_ill_conditioned_quadratic_within_the_pixel_bounds():
    rng = np.random.default_rng(0)
    low, high = pixel_bounds()
    # Half the centres lie beyond the displayable range: the answer there is the bound.
    centre = rng.uniform(low - 60, high + 60, SHAPE)
    curvature = rng.uniform(0.01, 1.0, SHAPE)  # condition number 100
    function = quadratic_loss(centre, curvature)
    result = run_lbfgs(function, np.zeros(SHAPE, np.float32), 200)[0].pixels
    np.testing.assert_allclose(result, np.clip(centre, low, high), atol=0.05)
    assert np.all(result >= low) and np.all(result <= high)
    assert result.dtype == np.float32 and result.shape == SHAPE


def test_lbfgs_costs_one_evaluation_per_iteration_when_no_step_must_be_halved():
    centre = np.random.default_rng(1).uniform(-20, 20, SHAPE)
    function = quadratic_loss(centre, 0.1)
    # The first step moves the pixels FIRST_STEP levels towards the centre, short of it; the
    # second, scaled by the curvature the first measured, is Newton's: it lands on the centre.
    start = (centre + 5 * FIRST_STEP).astype(np.float32)
    result, losses = run_lbfgs(function, start, 8)
    np.testing.assert_allclose(result.pixels, centre, atol=1e-4)
    assert losses[1] < 1e-6
    # Then it stops once no pixel can move (a step more may mend float32 rounding).
    assert len(losses) <= 3
    # The start, one per iteration, and the try that found no pixel to move (evaluated while
    # that was being found out).
    assert result.evaluations == 1 + len(losses) + 1


def test_lbfgs_rarely_needs_a_second_evaluation_on_an_ill_conditioned_problem():
    rng = np.random.default_rng(4)
    function = quadratic_loss(rng.uniform(-50, 50, SHAPE), rng.uniform(0.01, 1.0, SHAPE))
    result, losses = run_lbfgs(function, np.zeros(SHAPE, np.float32), 30)
    assert len(losses) == 30
    assert result.evaluations <= 1 + 1.25 * 30


def test_a_step_that_raises_the_loss_is_halved_until_it_lowers_it():
    centre = np.zeros(SHAPE)
    function = quadratic_loss(centre, 1.0)
    # 0.1 levels from the centre, the first step of FIRST_STEP levels would land 3.9 beyond it.
    start = np.full(SHAPE, 0.1, np.float32)
    result, losses = run_lbfgs(function, start, 1)
    assert losses[0] < float(function(to_tensor(start))[0])
    # 4 -> 2 -> 1 -> 0.5 -> 0.25 -> 0.125 (the first below 0.2): the start and six tries.
    assert result.evaluations == 1 + 6


def test_the_loss_never_rises_on_a_bumpy_function():
    start = np.random.default_rng(2).uniform(-80, 80, SHAPE).astype(np.float32)
    _, losses = run_lbfgs(Loss(bumpy), start, 40)
    assert all(later <= earlier for earlier, later in itertools.pairwise(losses))
    assert losses[-1] < 0.5 * float(bumpy(to_tensor(start))[0])


@pytest.mark.parametrize("chunk", [3, 7, 50])
def test_several_iterations_per_call_go_the_same_way_as_one(chunk):
    rng = np.random.default_rng(3)
    start = rng.uniform(-80, 80, SHAPE).astype(np.float32)
    one, one_losses = run_lbfgs(Loss(bumpy), start, 20, chunk=1)
    several, several_losses = run_lbfgs(Loss(bumpy), start, 20, chunk=chunk)
    # The same arithmetic, compiled as one program or several: equal up to float rounding.
    np.testing.assert_allclose(several_losses, one_losses, rtol=1e-5)
    np.testing.assert_allclose(several.pixels, one.pixels, rtol=1e-4, atol=1e-3)
    assert several.evaluations == one.evaluations


def test_progress_sees_every_iteration_in_order_with_several_per_call():
    seen: list[int] = []
    start = np.random.default_rng(4).uniform(-80, 80, SHAPE).astype(np.float32)
    lbfgs(Loss(bumpy), start, 11, lambda i, loss: seen.append(i), EarlyStop(0), chunk=4)
    assert seen == list(range(1, 12))


def test_an_early_stop_comes_at_the_end_of_its_chunk():
    centre = np.random.default_rng(5).uniform(-20, 20, SHAPE)
    # A tolerance no fall can meet: the stop is called for at the first look, the 11th
    # iteration (the fall over the last 10).
    stopped_at: list[int] = []

    def run(chunk):
        stopped_at.clear()
        lbfgs(quadratic_loss(centre, np.random.default_rng(6).uniform(0.01, 1.0, SHAPE)), np.zeros(SHAPE, np.float32),
              40, lambda i, loss: stopped_at.append(i), EarlyStop(2.0), chunk=chunk)
        return stopped_at[-1]

    assert run(1) == 11
    assert run(4) == 12  # chunks end after 4, 8 and 12


def test_lbfgs_stops_at_a_minimum_it_cannot_improve_on():
    function = quadratic_loss(np.zeros(SHAPE))
    result, losses = run_lbfgs(function, np.zeros(SHAPE, np.float32), 50)
    assert losses == []  # no step lowers a loss of zero
    assert np.array_equal(result.pixels, np.zeros(SHAPE, np.float32))


def diverging(pixels):
    """A bowl whose loss is not a number away from where it starts: L-BFGS's first step leaves it."""
    loss, gradient = quadratic(pixels, 30.0, 1.0)
    return ops.where(ops.max(ops.abs(pixels)) > 20, float("nan"), loss), gradient


@pytest.mark.parametrize("optimiser", ["lbfgs", "adam"])
@pytest.mark.parametrize("where", ["at the start", "after a step"])
def test_a_loss_that_is_not_a_number_is_a_clear_error(optimiser, where):
    def broken(pixels):
        return ops.sum(pixels) * float("nan"), ops.zeros_like(pixels)

    loss = Loss(broken) if where == "at the start" else Loss(diverging)
    start = np.zeros(SHAPE, np.float32)
    with pytest.raises(ModelError, match="diverged"):
        if optimiser == "lbfgs":
            lbfgs(loss, start, 5, lambda i, loss: None, EarlyStop(0))
        else:
            adam(loss, start, 500, lambda i, loss: None, EarlyStop(0), 2.0)


def test_adam_moves_towards_the_minimum_within_the_pixel_bounds():
    _, high = pixel_bounds()
    centre = np.broadcast_to(high + 50, SHAPE)  # beyond the top of every channel
    function = quadratic_loss(centre)
    result = adam(function, np.zeros(SHAPE, np.float32), 300, lambda i, loss: None, EarlyStop(0), 0.02)
    np.testing.assert_allclose(result.pixels, np.broadcast_to(high, SHAPE).astype(np.float32), atol=1e-3)
    assert result.evaluations == 300


def test_a_preconditioner_that_matches_the_curvature_makes_the_second_step_newtons():
    rng = np.random.default_rng(5)
    centre = rng.uniform(-20, 20, SHAPE)
    curvature = rng.uniform(0.01, 1.0, SHAPE)  # condition number 100
    start = np.zeros(SHAPE, np.float32)

    def losses_with(preconditioner):
        losses: list[float] = []
        lbfgs(quadratic_loss(centre, curvature), start, 2, lambda i, loss: losses.append(loss), EarlyStop(0),
              preconditioner=preconditioner)
        return losses

    # The first step goes along the Newton direction, the second, scaled by the curvature the
    # first measured, lands on the centre; without it, two steps get nowhere near.
    assert losses_with(1.0 / curvature)[1] < 1e-6
    assert losses_with(None)[1] > 1.0


def test_a_preconditioner_of_ones_changes_nothing():
    rng = np.random.default_rng(6)
    function = quadratic_loss(rng.uniform(-50, 50, SHAPE), rng.uniform(0.01, 1.0, SHAPE))
    start = np.zeros(SHAPE, np.float32)
    plain = lbfgs(function, start, 10, lambda i, loss: None, EarlyStop(0))
    ones = lbfgs(function, start, 10, lambda i, loss: None, EarlyStop(0), preconditioner=np.ones(SHAPE[:-1] + (1,)))
    np.testing.assert_array_equal(plain.pixels, ones.pixels)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_a_preconditioner_that_is_not_positive_and_finite_is_refused(bad):
    preconditioner = np.ones(SHAPE, np.float32)
    preconditioner[0, 1, 2, 0] = bad
    with pytest.raises(ValueError, match="positive and finite"):
        lbfgs(quadratic_loss(np.zeros(SHAPE)), np.ones(SHAPE, np.float32), 3, lambda i, loss: None, EarlyStop(0),
              preconditioner=preconditioner)


@pytest.mark.parametrize("chunk", [0, -1, 2.5, True])
def test_a_chunk_that_is_not_a_whole_number_from_one_is_refused(chunk):
    with pytest.raises(ValueError, match="chunk must be"):
        lbfgs(quadratic_loss(np.zeros(SHAPE)), np.ones(SHAPE, np.float32), 3, lambda i, loss: None, EarlyStop(0),
              chunk=chunk)
