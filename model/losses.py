"""The losses of Gatys et al.'s neural style, normalised as in jcjohnson/neural-style.

Pure functions of tensors written with ``keras.ops``, so they run on any Keras 3 backend (and on
NumPy arrays). Weights are applied by the caller; ``RenderSettings`` says how they combine.
"""

from __future__ import annotations

from typing import Any

from keras import ops

# A backend tensor (tf.Tensor, jax.Array) or a NumPy array: keras.ops takes either.
Tensor = Any

# The smallest feature unit: a layer that is dead on the painting must not divide by zero.
SMALLEST_UNIT = 1e-3


def gram_matrix(features: Tensor) -> Tensor:
    """Channel correlations of ``features`` (B, H, W, C), divided by C*H*W: (B, C, C)."""
    _, height, width, channels = ops.shape(features)
    flat = ops.reshape(features, (-1, height * width, channels))  # (B, HW, C)
    gram = ops.matmul(ops.transpose(flat, (0, 2, 1)), flat)  # (B, C, C)
    return gram / ops.cast(channels * height * width, gram.dtype)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Mean squared error between ``features`` and the photo's ``target`` features (same shape)."""
    return ops.mean(ops.square(features - target))


def style_loss(features: Tensor, target_gram: Tensor) -> Tensor:
    """Mean squared error between the Gram matrix of ``features`` (B, H, W, C) and ``target_gram``.

    ``target_gram`` (B, C, C) is the painting's ``gram_matrix`` at the same layer; the painting may
    have another size than the picture, since a Gram matrix forgets where things are.
    """
    return ops.mean(ops.square(gram_matrix(features) - target_gram))


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
