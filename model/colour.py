"""Colour preservation (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer").

Two ways to keep the photo's colours while taking the painting's brushwork, both pure NumPy on
(H, W, 3) uint8 RGB arrays:

- luminance-only transfer: paint the luminance alone (both images as grey, the painting's
  luminance matched to the photo's mean and spread), then put the photo's chroma back
  (``luminance_inputs``, then ``with_chroma_of``). YIQ separates the two, as in the paper.
- colour histogram matching: move the painting's colours so their mean and covariance are the
  photo's, before an ordinary transfer (``match_colour_histogram``).
"""

from __future__ import annotations

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
    source = np.asarray(painting, np.float64).reshape(-1, 3)
    target = np.asarray(photo, np.float64).reshape(-1, 3)
    mean_s, mean_t = source.mean(axis=0), target.mean(axis=0)
    # A little ridge keeps flat (grey, single-colour) images invertible.
    ridge = 1e-3 * np.eye(3)
    # Population covariances (bias=True): a one-pixel image has covariance 0, not NaN.
    cov_s = np.cov(source - mean_s, rowvar=False, bias=True) + ridge
    cov_t = np.cov(target - mean_t, rowvar=False, bias=True) + ridge
    transform = _sqrtm(cov_t) @ np.linalg.inv(_sqrtm(cov_s))
    moved = (source - mean_s) @ transform.T + mean_t
    return np.clip(np.rint(moved), 0, 255).astype(np.uint8).reshape(np.shape(painting))


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T
