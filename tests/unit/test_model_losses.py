"""The losses against plain NumPy references written from the formulas (minGPT-style golden tests)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from model.losses import (
    SMALLEST_UNIT,
    content_loss,
    feature_unit,
    gram_matrix,
    product,
    regional_style_loss,
    style_loss,
    total_variation_loss,
)


def reference_gram(features: np.ndarray) -> np.ndarray:
    """Sum over positions of F_i * F_j, divided by C*H*W, with loops so it cannot share a bug."""
    batch, height, width, channels = features.shape
    gram = np.zeros((batch, channels, channels), np.float64)
    for b in range(batch):
        for i in range(channels):
            for j in range(channels):
                gram[b, i, j] = np.sum(features[b, :, :, i] * features[b, :, :, j])
    return gram / (channels * height * width)


def reference_tv(image: np.ndarray) -> np.ndarray:
    """neural-style's TVLoss: 0.5 * sum over the top-left (H-1, W-1) pixels of dx^2 + dy^2."""
    _, height, width, _ = image.shape
    total = 0.0
    for y in range(height - 1):
        for x in range(width - 1):
            dx = image[:, y, x] - image[:, y, x + 1]
            dy = image[:, y, x] - image[:, y + 1, x]
            total += np.sum(dx**2 + dy**2)
    return np.asarray(0.5 * total)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def as_numpy(tensor: object) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor), np.float64)


def test_gram_matrix_matches_the_reference(rng: np.random.Generator) -> None:
    features = rng.standard_normal((2, 5, 7, 4)).astype(np.float32)

    gram = as_numpy(gram_matrix(features))

    assert gram.shape == (2, 4, 4)
    np.testing.assert_allclose(gram, reference_gram(features.astype(np.float64)), rtol=1e-5)


def test_sizes_multiply_in_floats_where_int32_would_overflow() -> None:
    # Traced for any picture size, a shape's numbers are int32 tensors: 64 * 8192 * 4096 = 2**31.
    sizes = [keras.ops.convert_to_tensor(n, "int32") for n in (64, 8192, 4096)]
    assert float(keras.ops.convert_to_numpy(product(sizes, "float32"))) == 2.0**31


def test_gram_matrix_forgets_where_things_are(rng: np.random.Generator) -> None:
    features = rng.standard_normal((1, 6, 6, 3)).astype(np.float32)
    shuffled = features.reshape(1, 36, 3)[:, rng.permutation(36)].reshape(1, 6, 6, 3)

    np.testing.assert_allclose(as_numpy(gram_matrix(shuffled)), as_numpy(gram_matrix(features)), rtol=1e-5)


def test_content_loss_is_the_mean_squared_error(rng: np.random.Generator) -> None:
    features, target = rng.standard_normal((2, 1, 6, 5, 8)).astype(np.float32)

    expected = np.mean((features.astype(np.float64) - target) ** 2)
    np.testing.assert_allclose(as_numpy(content_loss(features, target)), expected, rtol=1e-5)


def test_style_loss_is_the_mean_squared_error_of_grams(rng: np.random.Generator) -> None:
    features = rng.standard_normal((1, 6, 5, 8)).astype(np.float32)
    painting = rng.standard_normal((1, 9, 4, 8)).astype(np.float32)  # another size: Grams still compare
    target_gram = reference_gram(painting.astype(np.float64))

    expected = np.mean((reference_gram(features.astype(np.float64)) - target_gram) ** 2)
    loss = style_loss(features, target_gram.astype(np.float32))
    np.testing.assert_allclose(as_numpy(loss), expected, rtol=1e-5)


def test_style_loss_is_zero_for_the_painting_itself(rng: np.random.Generator) -> None:
    painting = rng.standard_normal((1, 6, 5, 8)).astype(np.float32)

    assert as_numpy(style_loss(painting, gram_matrix(painting))) == pytest.approx(0.0, abs=1e-12)


def test_total_variation_loss_matches_neural_style(rng: np.random.Generator) -> None:
    image = rng.uniform(-120, 150, (2, 6, 9, 3)).astype(np.float32)

    np.testing.assert_allclose(
        as_numpy(total_variation_loss(image)), reference_tv(image.astype(np.float64)), rtol=1e-5
    )


def test_total_variation_loss_is_zero_for_a_flat_image() -> None:
    flat = np.full((1, 4, 4, 3), 42.0, np.float32)

    assert as_numpy(total_variation_loss(flat)) == 0.0


def test_feature_unit_is_the_mean_activation(rng: np.random.Generator) -> None:
    features = rng.uniform(0, 8, (1, 5, 6, 16)).astype(np.float32)

    np.testing.assert_allclose(as_numpy(feature_unit(features)), features.mean(dtype=np.float64), rtol=1e-5)


def test_feature_unit_of_a_dead_layer_is_floored() -> None:
    assert as_numpy(feature_unit(np.zeros((1, 3, 3, 8), np.float32))) == pytest.approx(SMALLEST_UNIT)


def test_style_loss_in_feature_units_ignores_the_networks_scale(rng: np.random.Generator) -> None:
    # A ReLU network may be rescaled layer by layer without changing what it computes; measured
    # in units of the painting's mean activation, the style loss does not change either.
    features = rng.uniform(0, 4, (1, 6, 5, 8)).astype(np.float32)
    painting = rng.uniform(0, 3, (1, 7, 7, 8)).astype(np.float32)

    def in_units(scale: float) -> float:
        unit = feature_unit(painting * scale)
        return float(as_numpy(style_loss(features * scale / unit, gram_matrix(painting * scale / unit))))

    assert in_units(37.0) == pytest.approx(in_units(1.0), rel=1e-4)


def test_a_region_painted_apart_matches_the_target_on_its_own() -> None:
    rng = np.random.default_rng(3)
    features = rng.random((1, 6, 8, 4)).astype(np.float32)
    target = gram_matrix(rng.random((1, 5, 5, 4)).astype(np.float32))
    nothing = np.zeros((1, 6, 8, 1), np.float32)

    # No region: the plain style loss.
    np.testing.assert_allclose(
        regional_style_loss(features, target, nothing, 0.3), style_loss(features, target), rtol=1e-5
    )
    # A region: each part's own Gram matrix; the rest's weighed 1, the region's by its share
    # (a quarter) and by 0.3.
    region = nothing.copy()
    region[:, :2, :6] = 1.0
    inside = features[:, :2, :6].reshape(1, 1, 12, 4)
    rest = np.concatenate([features[:, :2, 6:].reshape(1, 1, 4, 4), features[:, 2:].reshape(1, 1, 32, 4)], axis=2)
    expected = style_loss(rest, target) + 0.3 * 0.25 * style_loss(inside, target)
    np.testing.assert_allclose(regional_style_loss(features, target, region, 0.3), expected, rtol=1e-5)
