"""Colour preservation (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer").

Two ways to keep the photo's colours while taking the painting's brushwork, both pure NumPy on
(H, W, 3) uint8 RGB arrays:

- luminance-only transfer: paint the luminance alone (both images as grey, the painting's
  luminance matched to the photo's mean and spread), then put the photo's chroma back
  (``luminance_inputs``, then ``with_chroma_of``). YIQ separates the two, as in the paper.
- colour histogram matching: move the painting's colours so their mean and covariance are the
  photo's, before an ordinary transfer (``match_colour_histogram``).

The same map the other way (``match_colours``) gives a render its start: the photo in the
painting's palette, so that the colours are there from the first iteration.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# NTSC YIQ, as in the paper: Y is luminance, I and Q chroma.
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def rgb_to_yiq(image: np.ndarray) -> np.ndarray:
    """(..., 3) RGB, 0..255, to float64 YIQ (Y in 0..255)."""
    return np.asarray(image, np.float64) @ _RGB_TO_YIQ.T


def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    """(..., 3) YIQ back to uint8 RGB, rounded and clipped."""
    rgb = np.asarray(yiq, np.float64) @ _YIQ_TO_RGB.T
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def grey(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) uint8 RGB picture's luminance, as an (H, W, 3) uint8 grey RGB picture."""
    return _grey(rgb_to_yiq(image)[..., 0])


def _grey(luminance: np.ndarray) -> np.ndarray:
    """(H, W) luminance to an (H, W, 3) uint8 grey RGB picture."""
    levels = np.clip(np.rint(luminance), 0, 255).astype(np.uint8)
    return np.repeat(levels[..., np.newaxis], 3, axis=-1)


def luminance_inputs(photo: np.ndarray, painting: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The photo's and the painting's luminance as grey RGB pictures, for luminance-only transfer.

    The painting's luminance is matched to the photo's mean and standard deviation, as the
    paper does, so that the picture keeps the photo's lightness and only the texture changes.
    """
    photo_y = rgb_to_yiq(photo)[..., 0]
    painting_y = rgb_to_yiq(painting)[..., 0]
    spread = painting_y.std()
    scale = photo_y.std() / spread if spread > 1e-6 else 1.0
    matched = (painting_y - painting_y.mean()) * scale + photo_y.mean()
    return _grey(photo_y), _grey(matched)


def with_chroma_of(painted: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """The luminance of ``painted`` with the chroma (I, Q) of ``photo``; both (H, W, 3) uint8."""
    if painted.shape != photo.shape:
        raise ValueError(f"the pictures differ in shape: {painted.shape} and {photo.shape}")
    yiq = rgb_to_yiq(photo)
    yiq[..., 0] = rgb_to_yiq(painted)[..., 0]
    return yiq_to_rgb(yiq)


def match_colour_histogram(painting: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """``painting`` with its colours moved so that their mean and covariance are the photo's.

    The linear map x -> A (x - mean_painting) + mean_photo with A = C_photo^1/2 C_painting^-1/2
    (symmetric square roots by eigendecomposition: the "image analogies" variant of the paper).
    Returns a new (h, w, 3) uint8 array the size of ``painting``.
    """
    return match_colours(painting, [photo])


def match_colours(image: np.ndarray, references: Sequence[np.ndarray], weights: Sequence[float] = ()) -> np.ndarray:
    """``image`` with its colours moved so that their mean and covariance are the references'.

    Several references count as one mixture of their pixels, each weighted by ``weights``
    (equal if none): a blend of paintings has the colours of their blend. The map is
    ``match_colour_histogram``'s. Returns a new uint8 array shaped like ``image``.
    """
    weights = tuple(weights) or (1.0,) * len(references)
    if len(weights) != len(references) or not references:
        raise ValueError(f"{len(weights)} weights for {len(references)} reference images")
    total = float(sum(weights))
    source = np.asarray(image, np.float64).reshape(-1, 3)
    mean_s, cov_s = _colour_statistics(source)
    stats = [_colour_statistics(np.asarray(r, np.float64).reshape(-1, 3)) for r in references]
    # The mixture's mean and covariance: E[x] and E[x x^T] - E[x] E[x]^T over the references.
    mean_t = sum(w * mean for w, (mean, _) in zip(weights, stats)) / total
    second = sum(w * (cov + np.outer(mean, mean)) for w, (mean, cov) in zip(weights, stats)) / total
    cov_t = second - np.outer(mean_t, mean_t)
    # A little ridge keeps flat (grey, single-colour) images invertible.
    ridge = 1e-3 * np.eye(3)
    transform = _sqrtm(cov_t + ridge) @ np.linalg.inv(_sqrtm(cov_s + ridge))
    moved = (source - mean_s) @ transform.T + mean_t
    return np.clip(np.rint(moved), 0, 255).astype(np.uint8).reshape(np.shape(image))


def _colour_statistics(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean (3,) and population covariance (3, 3) of (N, 3) pixels: a one-pixel image has
    covariance 0, not NaN."""
    mean = pixels.mean(axis=0)
    return mean, np.cov(pixels - mean, rowvar=False, bias=True).reshape(3, 3)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T
