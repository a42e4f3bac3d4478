"""What a render is asked to do (``RenderSettings``) and how far along it is (``Progress``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from model.weights import VGG16_LAYERS


@dataclass(frozen=True)
class RenderSettings:
    """How to paint one picture; validated when made, so a bad value fails before any work.

    The losses are normalised as in Justin Johnson's neural-style, the Torch implementation most
    Gatys-style results are made with:

    - content: mean squared error of the features, times ``content_weight``, summed over
      ``content_layers``;
    - style: Gram matrices divided by C*H*W, their mean squared error times ``style_weight``,
      summed over ``style_layers`` (each layer gets the full weight);
    - total variation: ``tv_weight`` times half the sum of squared right and down neighbour
      differences of the 0..255 image, as neural-style's ``TVLoss``.

    neural-style's weights (content 5, style 100, tv 1e-3) do not carry over, though: they were
    tuned on Caffe's VGG19, whose activations are orders of magnitude larger than those of the
    VGG16 shipped here (HED's), where moreover they shrink tenfold from block 1 to block 5. With
    them the smoothness term swamps the rest and the picture melts into blobs. So, as Gatys et
    al. normalised their network, each layer's activations are measured in units of their mean
    over the painting (``model.losses.feature_unit``), which weighs the layers alike whatever
    the network's scale; the default weights here were tuned for that (a 256 and 512 px render
    of Tuebingen in the style of The Starry Night, looked at). Only the ratios of the three
    weights matter.

    Attributes:
        size: Longest side of the painted picture, in pixels; the photo is resized to it.
        iterations: L-BFGS iterations (fewer if the loss stops falling first); each costs about
            one pass forward and back through the network.
        content_weight: How strongly the picture keeps the photo's features.
        style_weight: How strongly it takes on the painting's textures.
        tv_weight: How strongly it is smoothed (against high-frequency noise).
        content_layers: VGG16 layers whose activations stand for the photo's content.
        style_layers: VGG16 layers whose Gram matrices stand for the painting's style.
        style_scale: The painting is resized to ``style_scale * size`` on its longest side;
            smaller values give larger brush strokes.
        seed: Seeds any randomness of the render. Renders start from the photo itself, so today
            there is none and a render is deterministic whatever the seed.
    """

    size: int = 512
    iterations: int = 100
    content_weight: float = 1.0
    style_weight: float = 1e4
    tv_weight: float = 1e-8
    content_layers: tuple[str, ...] = ("block4_conv2",)
    style_layers: tuple[str, ...] = (
        "block1_conv1",
        "block2_conv1",
        "block3_conv1",
        "block4_conv1",
        "block5_conv1",
    )
    style_scale: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int("size", self.size, minimum=1)
        _check_int("iterations", self.iterations, minimum=1)
        _check_int("seed", self.seed, minimum=0)
        for name in ("content_weight", "style_weight", "tv_weight"):
            _check_weight(name, getattr(self, name))
        if _as_number("style_scale", self.style_scale) <= 0:
            raise ValueError(f"style_scale must be positive, got: {self.style_scale}")
        for name in ("content_layers", "style_layers"):
            # Lists are accepted and kept as tuples so that settings stay hashable and immutable.
            object.__setattr__(self, name, _check_layers(name, getattr(self, name)))
        if self.content_weight == self.style_weight == 0:
            raise ValueError("content_weight and style_weight cannot both be 0")


@dataclass(frozen=True)
class Progress:
    """Where a render stands after one L-BFGS iteration.

    Attributes:
        iteration: Iterations done, from 1.
        total: Iterations asked for; the render may finish earlier if it converges.
        loss: The total loss of the picture so far (lower is better).
        elapsed_s: Seconds since the render started, network preparation included.
    """

    iteration: int
    total: int
    loss: float
    elapsed_s: float


def _as_number(name: str, value: object) -> float:
    """``value`` as a finite float; a bool is an int to Python, but never a weight to us."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, got: {value!r}")
    return float(value)


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be a whole number, got: {value!r}")
    if value < minimum:
        what = "positive" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{name} must be {what}, got: {value}")


def _check_weight(name: str, value: object) -> None:
    if _as_number(name, value) < 0:
        raise ValueError(f"{name} must not be negative, got: {value}")


def _check_layers(name: str, layers: object) -> tuple[str, ...]:
    if isinstance(layers, str) or not isinstance(layers, (tuple, list)):
        raise ValueError(f"{name} must be a tuple of VGG16 layer names, got: {layers!r}")
    if not layers:
        raise ValueError(f"{name} must name at least one layer, got: ()")
    unknown = [layer for layer in layers if layer not in VGG16_LAYERS]
    if unknown:
        raise ValueError(
            f"{name} has unknown layer {unknown[0]!r}; VGG16 has: {', '.join(VGG16_LAYERS)}"
        )
    if len(set(layers)) != len(layers):
        raise ValueError(f"{name} names a layer twice, got: {tuple(layers)}")
    return tuple(layers)
