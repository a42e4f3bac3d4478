"""Colour preservation by numbers: luminance and chroma, and the painting's colours matched."""

from __future__ import annotations

import numpy as np
import pytest

from model.colour import (
    grey,
    luminance_inputs,
    match_colour_histogram,
    match_colours,
    rgb_to_yiq,
    with_chroma_of,
    yiq_to_rgb,
)

rng = np.random.default_rng(7)


def warm_photo() -> np.ndarray:
    """Reddish, bright, low contrast."""
    return np.clip(rng.normal((200, 120, 90), (20, 15, 10), (40, 50, 3)), 0, 255).astype(np.uint8)


def cold_painting() -> np.ndarray:
    """Blue, dark, high contrast, with correlated channels."""
    base = rng.normal(0, 1, (60, 30, 1))
    return np.clip((40, 60, 140) + base * (30, 35, 60), 0, 255).astype(np.uint8)


def test_yiq_round_trips_to_the_same_colours() -> None:
    photo = warm_photo()

    assert np.abs(yiq_to_rgb(rgb_to_yiq(photo)).astype(int) - photo).max() <= 1


def test_luminance_inputs_are_grey_and_the_painting_takes_the_photos_lightness() -> None:
    photo, painting = warm_photo(), cold_painting()

    grey_photo, grey_painting = luminance_inputs(photo, painting)

    for image in (grey_photo, grey_painting):
        assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
    assert grey_painting.shape == painting.shape
    photo_y = rgb_to_yiq(photo)[..., 0]
    assert grey_painting[..., 0].mean() == pytest.approx(photo_y.mean(), abs=1.0)
    assert grey_painting[..., 0].std() == pytest.approx(photo_y.std(), rel=0.05)


def test_with_chroma_of_keeps_the_luminance_of_one_and_the_chroma_of_the_other() -> None:
    photo = warm_photo()
    # Mid-grey strokes: the photo's chroma on them stays inside the RGB cube (no clipping).
    painted = grey(rng.integers(90, 170, (40, 50, 3)).astype(np.uint8))

    combined = with_chroma_of(painted, photo)

    yiq, photo_yiq, painted_yiq = rgb_to_yiq(combined), rgb_to_yiq(photo), rgb_to_yiq(painted)
    assert np.abs(yiq[..., 0] - painted_yiq[..., 0]).mean() < 1.5
    assert np.abs(yiq[..., 1:] - photo_yiq[..., 1:]).mean() < 1.5
    with pytest.raises(ValueError, match="differ in shape"):
        with_chroma_of(painted[:10], photo)


def test_histogram_matching_gives_the_painting_the_photos_mean_and_covariance() -> None:
    photo, painting = warm_photo(), cold_painting()

    matched = match_colour_histogram(painting, photo)

    assert matched.shape == painting.shape and matched.dtype == np.uint8
    flat, target = matched.reshape(-1, 3).astype(float), photo.reshape(-1, 3).astype(float)
    np.testing.assert_allclose(flat.mean(axis=0), target.mean(axis=0), atol=1.5)
    np.testing.assert_allclose(np.cov(flat, rowvar=False), np.cov(target, rowvar=False), atol=8.0)


def test_a_flat_painting_does_not_divide_by_zero() -> None:
    flat = np.full((10, 10, 3), 128, np.uint8)

    assert np.isfinite(match_colour_histogram(flat, warm_photo()).astype(float)).all()
    assert luminance_inputs(warm_photo(), flat)[1].shape == flat.shape


def test_a_one_pixel_painting_takes_the_photos_mean_colour() -> None:
    photo = warm_photo()

    matched = match_colour_histogram(np.array([[[10, 200, 30]]], np.uint8), photo)

    np.testing.assert_allclose(matched[0, 0], photo.reshape(-1, 3).mean(axis=0), atol=1.0)


def test_match_colours_gives_an_image_the_mean_and_covariance_of_a_blend_of_references() -> None:
    rng = np.random.default_rng(4)
    photo = rng.integers(40, 200, (40, 50, 3)).astype(np.uint8)
    warm = np.clip(rng.normal((200, 120, 60), 20, (30, 30, 3)), 0, 255).astype(np.uint8)
    cold = np.clip(rng.normal((40, 80, 190), 10, (20, 20, 3)), 0, 255).astype(np.uint8)

    one = match_colours(photo, [warm])
    assert one.shape == photo.shape and one.dtype == np.uint8
    np.testing.assert_allclose(one.reshape(-1, 3).mean(0), warm.reshape(-1, 3).mean(0), atol=1.5)
    np.testing.assert_allclose(np.cov(one.reshape(-1, 3), rowvar=False), np.cov(warm.reshape(-1, 3), rowvar=False),
                               rtol=0.1, atol=15)
    # Two references at 3:1 are one mixture of their pixels, weighted so.
    both = match_colours(photo, [warm, cold], [3, 1])
    mixture = np.concatenate([np.repeat(warm.reshape(-1, 3), 4 * 3, 0), np.repeat(cold.reshape(-1, 3), 9, 0)])
    # (up to the clipping to 0..255 of the mixture's wide spread)
    np.testing.assert_allclose(both.reshape(-1, 3).mean(0), mixture.mean(0), atol=4)
    np.testing.assert_allclose(np.cov(both.reshape(-1, 3), rowvar=False), np.cov(mixture, rowvar=False), rtol=0.15, atol=20)
    # The histogram matching of the paper is the same map with the photo as the reference.
    np.testing.assert_array_equal(match_colour_histogram(warm, photo), match_colours(warm, [photo]))
    with pytest.raises(ValueError, match="2 weights for 1 reference"):
        match_colours(photo, [warm], [1, 2])
