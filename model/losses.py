"""The losses of Gatys et al.'s neural style, normalised as in jcjohnson/neural-style.

Pure functions of tensors written with ``keras.ops``, so they run on any Keras 3 backend (and on
NumPy arrays). Weights are applied by the caller; ``RenderSettings`` says how they combine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keras import ops

# A backend tensor (tf.Tensor, jax.Array) or a NumPy array: keras.ops takes either.
Tensor = Any

# The smallest feature unit: a layer that is dead on the painting must not divide by zero.
SMALLEST_UNIT = 1e-3


def gram_matrix(features: Tensor, weights: Tensor | None = None) -> Tensor:
    """Channel correlations of ``features`` (B, H, W, C), divided by C*H*W: (B, C, C).

    With ``weights`` (B, H, W, 1), each position counts that much and the sum is divided by
    C times the sum of the weights (Gatys et al. 2017's spatial control): positions of weight
    below 1 shape the matrix, and receive its gradient, less. All ones is the plain matrix.
    """
    _, height, width, channels = ops.shape(features)
    flat = ops.reshape(features, (-1, height * width, channels))  # (B, HW, C)
    if weights is None:
        gram = ops.matmul(ops.transpose(flat, (0, 2, 1)), flat)  # (B, C, C)
        return gram / product((channels, height, width), gram.dtype)
    weighted = flat * ops.reshape(weights, (-1, height * width, 1))
    gram = ops.matmul(ops.transpose(weighted, (0, 2, 1)), flat)  # (B, C, C)
    # Floored: a region that vanished at a deep layer must not divide by zero.
    return gram / (ops.cast(channels, gram.dtype) * ops.maximum(ops.sum(weights), 1e-6))


def product(sizes: Sequence[Any], dtype: str) -> Tensor:
    """The product of ``sizes`` in ``dtype``, each cast first: traced for any picture size, a
    shape's numbers are int32 tensors, whose product overflows from 2**31 (a Gram matrix's
    64 channels at 8192 x 4096 would be divided by a negative number)."""
    total = ops.cast(1, dtype)
    for size in sizes:
        total = total * ops.cast(size, dtype)
    return total


def content_loss(features: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean squared error between ``features`` and the photo's ``target`` features (same shape).

    ``weights`` (B, H, W, 1) scales each position's error (1 everywhere is the plain loss).
    """
    error = ops.square(features - target)
    return ops.mean(error if weights is None else error * weights)


def style_loss(features: Tensor, target_gram: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean squared error between the Gram matrix of ``features`` (B, H, W, C) and ``target_gram``.

    ``target_gram`` (B, C, C) is the painting's ``gram_matrix`` at the same layer; the painting may
    have another size than the picture, since a Gram matrix forgets where things are. ``weights``
    (B, H, W, 1) weigh the picture's positions in its Gram matrix (``gram_matrix``).
    """
    return ops.mean(ops.square(gram_matrix(features, weights) - target_gram))


def regional_style_loss(features: Tensor, target_gram: Tensor, region: Tensor, region_weight: float) -> Tensor:
    """Style loss with a region painted apart (Gatys et al. 2017's spatial control).

    ``region`` (B, H, W, 1), 0..1, marks where the region is (faces). The picture outside it and
    the region each match ``target_gram`` with Gram matrices of their own, so that the region's
    look does not pull the rest's style. The rest keeps the full style: its term is the plain
    loss of that part alone, weighed 1, as in Gatys et al. The region's term is weighed by
    ``region_weight`` times the share of the picture it covers, so that each of its positions
    pulls ``region_weight`` times as hard as in the plain loss however small the region (a
    small face weighed 1 would be painted harder than the plain loss paints it). With an empty
    region this is ``style_loss``.
    """
    _, height, width, _ = ops.shape(features)
    area = product((height, width), features.dtype)
    return style_loss(features, target_gram, 1.0 - region) + (
        region_weight * ops.sum(region) / area * style_loss(features, target_gram, region)
    )


def total_variation_loss(image: Tensor) -> Tensor:
    """Half the summed squared differences to the right and lower neighbours of ``image`` (B, H, W, C).

    As neural-style's ``TVLoss``: over the top-left (H-1, W-1) pixels, so each difference pair
    starts from the same pixel.
    """
    corner = image[:, :-1, :-1, :]  # (B, H-1, W-1, C)
    right = corner - image[:, :-1, 1:, :]
    down = corner - image[:, 1:, :-1, :]
    return 0.5 * ops.sum(ops.square(right) + ops.square(down))


def feature_unit(features: Tensor) -> Tensor:
    """The unit to measure a layer's activations (B, H, W, C) in: their mean (a scalar).

    Gatys et al. rescaled VGG's filters to a mean activation of one so that the layers weigh
    alike; the renderer does the same per layer, with this taken on the painting. Without it
    HED's VGG16, whose activations shrink more than tenfold from block 1 to block 5, would let
    block 1 and the smoothness term drown the rest (a photo's style loss against The Starry Night
    is 5000 times smaller at block4_conv1 than at block1_conv1). Floored at ``SMALLEST_UNIT``
    so that a layer dead on a blank painting does not divide by zero.
    """
    return ops.maximum(ops.mean(features), SMALLEST_UNIT)
