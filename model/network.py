"""The VGG feature extractor the losses look through, and the pixels it expects.

Both networks take Caffe-style input, as the weights were trained on: BGR channels, 0..255, minus
the ImageNet mean colour (Keras' ``vgg16.preprocess_input`` in "caffe" mode).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from model.backend import tensorflow_eagerly
from model.errors import WeightsError
from model.weights import NETWORKS, Network

# The ImageNet mean colour, BGR, that VGG16's Caffe training subtracted.
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def preprocess(image: np.ndarray) -> np.ndarray:
    """RGB pixels 0..255, (..., H, W, 3) uint8 or float, to the network's float32 BGR minus mean."""
    return np.asarray(image, dtype=np.float32)[..., ::-1] - CAFFE_MEAN_BGR


def deprocess(pixels: np.ndarray) -> np.ndarray:
    """The network's BGR minus mean, (..., H, W, 3), back to uint8 RGB, rounded and clipped."""
    rgb = (np.asarray(pixels, dtype=np.float32) + CAFFE_MEAN_BGR)[..., ::-1]
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def pixel_bounds() -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest preprocessed value of each channel, (3,) each: 0 and 255 minus mean."""
    return -CAFFE_MEAN_BGR, 255.0 - CAFFE_MEAN_BGR


class MaxPool2x2(keras.layers.Layer):
    """2x2 max pooling with stride 2, an odd last row or column pooled on its own (Keras'
    ``MaxPooling2D(2, padding="same")``, Caffe's ceil mode): the same values, computed as a
    reshape and a max over each window wherever a gradient is compiled.

    What differs is the gradient. ``MaxPooling2D``'s is a select-and-scatter, which XLA's CPU
    backend runs as a loop of its own over the full-size activations; a max's is a mask of where
    the maxima are, which XLA fuses with the ReLU's. On 2 CPU cores the default loss's pass
    forward and back at 512 x 384 px took 2.61-2.67 s against 2.90 s on TensorFlow, 2.61-2.77 s
    against 3.17-3.30 s on JAX; a default 512 px render, 51.7 s against 55.6 s. Where two
    values of a window tie for the maximum they share its gradient; after a ReLU, ties are
    zeros, whose gradient the ReLU stops anyway. Run eagerly on TensorFlow (the targets' pass,
    no gradient), Keras' own pooling is faster, and gives the same values; and in a TensorFlow
    graph that XLA does not compile (``for_xla`` False), whose oneDNN kernels pool, and send the
    gradient back, faster than a reshape and a max: the bfloat16 loss's pass forward and back at
    512 x 336 px took 378 ms with them against 485 ms, on 2 AVX-512 cores.
    """

    def __init__(self, for_xla: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.for_xla = for_xla

    def call(self, inputs: keras.KerasTensor) -> keras.KerasTensor:
        if not self.for_xla or tensorflow_eagerly():
            return keras.ops.max_pool(inputs, 2, 2, padding="same")
        _, height, width, channels = inputs.shape
        # An odd last row (column) repeated: its window's maximum is itself, as in "same" pooling.
        if height is None or width is None:
            # A graph for any picture size (the loss of ``model.render._compile``): the last row
            # and column are always repeated, and cut off again where the size is even. XLA,
            # compiling for one size, leaves out what is cut off.
            _, height, width, _ = keras.ops.shape(inputs)
            rows, columns = (height + 1) // 2, (width + 1) // 2
            inputs = keras.ops.concatenate([inputs, inputs[:, -1:]], axis=1)[:, : 2 * rows]
            inputs = keras.ops.concatenate([inputs, inputs[:, :, -1:]], axis=2)[:, :, : 2 * columns]
        else:
            rows, columns = (height + 1) // 2, (width + 1) // 2
            if height % 2:
                inputs = keras.ops.concatenate([inputs, inputs[:, -1:]], axis=1)
            if width % 2:
                inputs = keras.ops.concatenate([inputs, inputs[:, :, -1:]], axis=2)
        windows = keras.ops.reshape(inputs, (-1, rows, 2, columns, 2, channels))
        return keras.ops.max(windows, axis=(2, 4))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        batch, height, width, channels = input_shape
        half = [None if side is None else (side + 1) // 2 for side in (height, width)]
        return (batch, *half, channels)


def build_extractor(
    weights: Mapping[str, tuple[np.ndarray, np.ndarray]],
    layers: Sequence[str],
    net: Network = NETWORKS["vgg16"],
    precision: str = "float32",
    for_xla: bool = True,
) -> keras.Model:
    """A VGG (``net``, VGG16 unless told) that maps preprocessed images (B, H, W, 3) to the activations of ``layers``.

    The network stops at the deepest of ``layers``: the convolutions after it would cost time and
    change nothing. Activations are after the ReLU (``block4_conv2`` is Gatys' ``relu4_2``), and
    come out as a list in the order of ``layers``. Any image size works: pooling pads odd sizes,
    as Caffe's did. ``precision`` "bfloat16" computes in bfloat16 (Keras' mixed_bfloat16
    policy: float32 weights, bfloat16 activations out); "float32" in float32. ``for_xla``: whether
    its gradient is compiled by XLA (``MaxPool2x2`` pools for it). Raises ``WeightsError`` if
    ``weights`` lacks a layer or has a wrong shape.
    """
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"precision must be float32 or bfloat16, got: {precision!r}")
    policy = "mixed_bfloat16" if precision == "bfloat16" else "float32"
    unknown = [layer for layer in layers if layer not in net.kernel_shapes]
    if unknown or not layers:
        raise ValueError(f"layers must be {net.name} layer names, got: {list(layers)}")
    deepest = max(net.layers.index(layer) for layer in layers)
    used = net.layers[: deepest + 1]
    check_weights(weights, used, net)

    inputs = keras.Input(shape=(None, None, 3), name="bgr_minus_mean")
    activations: dict[str, keras.KerasTensor] = {}
    x = inputs
    for name in used:
        block = name.split("_")[0]
        if name.endswith("conv1") and block != "block1":
            x = MaxPool2x2(for_xla, name=f"{block}_pool", dtype=policy)(x)
        filters = net.kernel_shapes[name][-1]
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=name, dtype=policy)(x)
        activations[name] = x
    model = keras.Model(inputs, [activations[layer] for layer in layers], name=f"{net.name}_features")
    for name in used:
        kernel, bias = weights[name]
        model.get_layer(name).set_weights([np.asarray(kernel), np.asarray(bias)])
    return model


def check_weights(
    weights: Mapping[str, tuple[np.ndarray, np.ndarray]],
    used: Sequence[str],
    net: Network = NETWORKS["vgg16"],
) -> None:
    """Raise ``WeightsError`` unless ``weights`` has each of the ``used`` layers, shaped for ``net``."""
    label = net.name.upper()
    for name in used:
        if name not in weights:
            raise WeightsError(f"the weights have no {name} layer, which {label} needs")
        kernel, bias = weights[name]
        kernel_shape = net.kernel_shapes[name]
        if np.shape(kernel) != kernel_shape or np.shape(bias) != kernel_shape[-1:]:
            raise WeightsError(
                f"the {name} weights have shapes {np.shape(kernel)} and {np.shape(bias)}, "
                f"{label} needs {kernel_shape} and {kernel_shape[-1:]}"
            )
