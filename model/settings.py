"""What a render is asked to do (``RenderSettings``) and how far along it is (``Progress``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from model.weights import NETWORKS

OPTIMISERS = ("lbfgs", "adam")
INITS = ("content", "noise", "image")
# "painting": the painting's colours; "luminance": luminance-only transfer, the photo's colours
# kept; "histogram": the painting's colours matched to the photo's first (Gatys et al. 2016).
COLOURS = ("painting", "luminance", "histogram")
# What the picture starts from with init "content": the photo moved to the "painting"'s colours
# (mean and covariance), so its palette is there from the first iteration, or the "photo" as it is.
START_COLOURS = ("painting", "photo")
# "auto": find faces and keep them recognisable (model.faces); "off": paint faces like the rest.
FACES = ("auto", "off")
# What the network computes in: "auto" is bfloat16 on a GPU or a CPU with bfloat16 instructions,
# float32 elsewhere (see RenderSettings).
PRECISIONS = ("auto", "float32", "bfloat16")
# What users say, as multiples of the style weight.
STRENGTHS = {"low": 1 / 3, "normal": 1.0, "high": 3.0}

_STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
# A style layer's weight when ``style_layer_weights`` is empty, by its block: the first two
# blocks (the painting's palette and its brushwork) count SHALLOW_WEIGHT times the others. On
# the eval pairs at 512 px, equal weights left the picture near the photo's textures; these
# moved every pair toward its painting, its structure kept (bench/NOTES.md). Deep layers weighed
# more did the opposite.
SHALLOW_BLOCKS = ("block1", "block2")
SHALLOW_WEIGHT = 8.0
# The photo's content at block3_conv1 as well as block4_conv2 (Gatys' relu4_2), at half the
# weight each: the shallower layer keeps thin lines and edges (the Golden Gate's cables), so the
# 45 iterations at half size can take the painting further without the photo's structure going.
# On the eval pairs at 512 px, with (45, 10) iterations, against block4_conv2 alone at weight 1
# and (30, 4), style and content rose together on six pairs of eight, the other two moving by
# under 0.005 (bench/NOTES.md).
_CONTENT_LAYERS = ("block3_conv1", "block4_conv2")


def is_shallow(layer: str) -> bool:
    """Whether ``layer`` (such as "block2_conv1") is in one of ``SHALLOW_BLOCKS``."""
    return layer.split("_")[0] in SHALLOW_BLOCKS


# The largest picture (longest side, px) and painting scale accepted: a typo beyond them is a
# clear error, not a render that runs out of memory (``forger render --size`` has the same bound).
MAX_SIZE = 8192
MAX_STYLE_SCALE = 4.0


@dataclass(frozen=True)
class RenderSettings:
    """How to paint one picture; validated when made, so a bad value fails before any work.

    **Losses.** They are normalised exactly as in Justin Johnson's neural-style, the Torch
    implementation most Gatys-style results are made with: content is the mean squared error of
    the features times ``content_weight``; style is the mean squared error of Gram matrices
    divided by C*H*W, times ``style_weight`` (and the layer's own weight) for each style layer;
    total variation is ``tv_weight`` times half the summed squared right and down differences of
    the 0..255 picture, as its ``TVLoss``. So on its network (``network="vgg19"``, the Caffe
    ImageNet VGG19, with ``feature_units=False``) its published weights carry over unchanged:
    ``RenderSettings.neural_style()`` is its defaults.

    They do not carry over to the bundled VGG16 (HED's), whose activations are orders of
    magnitude smaller than Caffe VGG19's and shrink tenfold from block 1 to block 5: with them the
    smoothness term swamps the rest and the picture melts into blobs. So with ``feature_units``
    each layer's activations are measured in units of their mean over the painting
    (``model.losses.feature_unit``), as Gatys et al. normalised their network, which weighs the
    layers alike whatever the network's scale; the defaults here were tuned for that.

    **Schedule.** Coarse to fine (Gatys et al. 2017): the picture is painted at each of
    ``scales`` (fractions of ``size``) in turn, each stage starting from the last one's picture
    enlarged, with ``iterations[i]`` iterations at ``scales[i]``: most of them at the small
    scales, where they are cheap, a few at full size for the fine strokes. A stage ends early
    when its loss falls by less than ``early_stop`` (a fraction) over 10 iterations.

    Attributes:
        size: Longest side of the painted picture, in pixels; the photo is resized to it.
        scales: The sizes to paint at, as increasing fractions of ``size``, ending at 1.
        iterations: Optimiser iterations at each scale (one number per scale; an int for one
            scale). An L-BFGS iteration costs one pass forward and back through the network
            (rarely two or more: a step that raises the loss is halved and tried again).
        early_stop: A stage ends when its loss fell by less than this fraction over its last 10
            iterations; 0 runs every iteration.
        optimiser: "lbfgs" (L-BFGS, as neural-style) or "adam".
        learning_rate: Adam's step, for pixels in 0..1 (the TensorFlow tutorial's 0.02).
        init: Start from the "content" photo, from seeded "noise", or from a given "image".
        start_colours: With ``init="content"``, start from the photo in the "painting"'s colours
            (their mean and covariance, ``model.colour.match_colours``; with several paintings,
            their blend's) or from the "photo" as it is. From the painting's colours the
            palette is there at once, and the iterations go to the brushwork.
        seed: Seeds the noise of ``init="noise"``; a render is deterministic for its inputs.
        network: "vgg16" (bundled) or "vgg19" (ImageNet, ``keras.applications``).
        feature_units: Measure each layer in units of its mean activation on the painting.
        content_weight: How strongly the picture keeps the photo's features.
        style_weight: How strongly it takes on the painting's textures.
        tv_weight: How strongly it is smoothed (against high-frequency noise).
        strength: A multiple of ``style_weight``: what users mean by "strength" (``STRENGTHS``).
        content_layers: Layers whose activations stand for the photo's content.
        style_layers: Layers whose Gram matrices stand for the painting's style.
        style_layer_weights: One weight per style layer; empty means ``SHALLOW_WEIGHT`` for the
            layers of blocks 1 and 2 and 1 for the others.
        style_scale: Each painting is resized to ``style_scale`` times the picture's longest
            side; smaller values give larger brush strokes.
        style_blend: With several paintings, the weight of each; empty means equal. The style
            targets are the blend of their Gram matrices, weights normalised to sum to 1.
        colours: "painting", "luminance" (keep the photo's colours) or "histogram" (the
            painting's colours matched to the photo's); see ``COLOURS``.
        faces: "auto" finds the photo's faces and gives them more content weight and less
            style, most on the eyes and mouth (``model.faces``); "off" does not look.
        precision: What the network's convolutions compute in: "float32", or "bfloat16"
            (Keras' mixed_bfloat16: the weights and the losses stay float32). "auto" is
            bfloat16 where Keras' backend runs on a GPU or on a CPU with bfloat16 instructions
            (AVX-512 BF16 or AMX, ``model.backend.cpu_has_bfloat16``), float32 elsewhere; a
            CPU without those instructions only emulates it, slowly (figures: bench/NOTES.md).
    """

    size: int = 512
    scales: tuple[float, ...] = (0.5, 1.0)
    iterations: tuple[int, ...] = (45, 10)
    early_stop: float = 0.01
    optimiser: str = "lbfgs"
    learning_rate: float = 0.02
    init: str = "content"
    start_colours: str = "painting"
    seed: int = 0
    network: str = "vgg16"
    feature_units: bool = True
    content_weight: float = 0.5
    style_weight: float = 5e4
    tv_weight: float = 1e-8
    strength: float = 1.0
    content_layers: tuple[str, ...] = _CONTENT_LAYERS
    style_layers: tuple[str, ...] = _STYLE_LAYERS
    style_layer_weights: tuple[float, ...] = field(default=())
    style_scale: float = 1.0
    style_blend: tuple[float, ...] = field(default=())
    colours: str = "painting"
    faces: str = "auto"
    precision: str = "auto"

    def __post_init__(self) -> None:
        _check_int("size", self.size, minimum=1)
        if self.size > MAX_SIZE:
            raise ValueError(f"size must be at most {MAX_SIZE} px, got: {self.size}")
        _check_int("seed", self.seed, minimum=0)
        scales = _numbers("scales", self.scales)
        if not scales or any(b <= a for a, b in zip(scales, scales[1:])) or scales[-1] != 1.0:
            raise ValueError(f"scales must increase and end at 1, got: {self.scales!r}")
        if scales[0] <= 0:
            raise ValueError(f"scales must be positive, got: {self.scales!r}")
        iterations = (self.iterations,) if isinstance(self.iterations, int) else self.iterations
        if not isinstance(iterations, (tuple, list)) or len(iterations) != len(scales):
            raise ValueError(
                f"iterations must give one number per scale ({len(scales)}), got: {self.iterations!r}"
            )
        for count in iterations:
            _check_int("iterations", count, minimum=0)
        if iterations[-1] < 1:
            raise ValueError(f"iterations at full size must be at least 1, got: {self.iterations!r}")
        object.__setattr__(self, "scales", scales)
        object.__setattr__(self, "iterations", tuple(iterations))
        if not 0 <= _as_number("early_stop", self.early_stop) < 1:
            raise ValueError(f"early_stop must be between 0 and 1, got: {self.early_stop}")
        _check_choice("optimiser", self.optimiser, OPTIMISERS)
        _check_choice("init", self.init, INITS)
        _check_choice("start_colours", self.start_colours, START_COLOURS)
        _check_choice("network", self.network, tuple(NETWORKS))
        _check_choice("colours", self.colours, COLOURS)
        _check_choice("faces", self.faces, FACES)
        _check_choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.feature_units, bool):
            raise ValueError(f"feature_units must be true or false, got: {self.feature_units!r}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            _check_weight(name, getattr(self, name))
        for name in ("learning_rate", "strength", "style_scale"):
            if _as_number(name, getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive, got: {getattr(self, name)}")
        if self.style_scale > MAX_STYLE_SCALE:
            raise ValueError(f"style_scale must be at most {MAX_STYLE_SCALE:g}, got: {self.style_scale}")
        layers = NETWORKS[self.network].layers
        for name in ("content_layers", "style_layers"):
            # Lists are accepted and kept as tuples so that settings stay hashable and immutable.
            object.__setattr__(self, name, _check_layers(name, getattr(self, name), layers, self.network))
        layer_weights = _numbers("style_layer_weights", self.style_layer_weights)
        if layer_weights and len(layer_weights) != len(self.style_layers):
            raise ValueError(
                f"style_layer_weights must give one weight per style layer ({len(self.style_layers)}), "
                f"got: {self.style_layer_weights!r}"
            )
        blend = _numbers("style_blend", self.style_blend)
        if any(weight < 0 for weight in layer_weights + blend):
            raise ValueError("style_layer_weights and style_blend must not be negative")
        if blend and sum(blend) == 0:
            raise ValueError(f"style_blend must not be all 0, got: {self.style_blend!r}")
        object.__setattr__(self, "style_layer_weights", layer_weights)
        object.__setattr__(self, "style_blend", blend)
        no_style = self.style_weight == 0 or (layer_weights and not any(layer_weights))
        if self.content_weight == 0 and no_style:
            raise ValueError(
                "content_weight and the style (style_weight, or every style_layer_weight) cannot both be 0"
            )

    @classmethod
    def neural_style(cls, **changes: object) -> RenderSettings:
        """jcjohnson/neural-style's defaults: Caffe VGG19, its weights, 1000 L-BFGS iterations
        at 512 px from noise, no feature units (its losses are these losses unscaled).

        One difference: its noise is Gaussian with a deviation of 0.001 around the mean colour
        (a grey start), Forger's ``init="noise"`` uniform over the pixels' range.
        """
        defaults: dict[str, object] = {
            "network": "vgg19",
            "feature_units": False,
            "content_weight": 5.0,
            "style_weight": 100.0,
            "tv_weight": 1e-3,
            "content_layers": ("block4_conv2",),
            "style_layers": _STYLE_LAYERS,
            "scales": (1.0,),
            "iterations": (1000,),
            "init": "noise",
        }
        merged = {**defaults, **changes}
        # Its layers weigh 1 each, whichever they are.
        merged.setdefault("style_layer_weights", (1.0,) * len(merged["style_layers"]))  # type: ignore[arg-type]
        return cls(**merged)  # type: ignore[arg-type]

    @property
    def total_iterations(self) -> int:
        """The iterations of every stage together: what progress counts up to."""
        return sum(self.iterations)

    @property
    def layer_weights(self) -> tuple[float, ...]:
        """The weight of each style layer: ``style_layer_weights``, or by block (``SHALLOW_WEIGHT``)."""
        return self.style_layer_weights or tuple(
            SHALLOW_WEIGHT if is_shallow(layer) else 1.0 for layer in self.style_layers
        )

    def stage_sizes(self) -> tuple[int, ...]:
        """The longest side painted at each scale, in pixels (at least 16, at most ``size``)."""
        return tuple(min(self.size, max(16, round(scale * self.size))) for scale in self.scales)


def parse_strength(value: str | float) -> float:
    """A strength as users give it: "low", "normal", "high", or a positive number ("2", 0.5)."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in STRENGTHS:
            return STRENGTHS[word]
        try:
            number = float(word)
        except ValueError:
            raise ValueError(
                f"strength must be low, normal, high or a positive number, got: {value!r}"
            ) from None
    else:
        number = _as_number("strength", value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"strength must be low, normal, high or a positive number, got: {value!r}")
    return number


@dataclass(frozen=True)
class Progress:
    """Where a render stands after one optimiser iteration.

    Attributes:
        iteration: Iterations done, from 1, over every stage; a stage that stops early counts
            as done.
        total: Iterations asked for; the render may finish earlier if it converges.
        loss: The total loss of the picture so far (lower is better), at the current stage's size.
        elapsed_s: Seconds since the render started, network preparation included.
        size: The longest side being painted in the current stage.
    """

    iteration: int
    total: int
    loss: float
    elapsed_s: float
    size: int = 0


def _as_number(name: str, value: object) -> float:
    """``value`` as a finite float; a bool is an int to Python, but never a weight to us."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, got: {value!r}")
    return float(value)


def _numbers(name: str, values: object) -> tuple[float, ...]:
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = (values,)
    if not isinstance(values, (tuple, list)):
        raise ValueError(f"{name} must be a list of numbers, got: {values!r}")
    return tuple(_as_number(name, value) for value in values)


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be a whole number, got: {value!r}")
    if value < minimum:
        what = "positive" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{name} must be {what}, got: {value}")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got: {value!r}")


def _check_weight(name: str, value: object) -> None:
    if _as_number(name, value) < 0:
        raise ValueError(f"{name} must not be negative, got: {value}")


def _check_layers(
    name: str, layers: object, known: tuple[str, ...], network: str
) -> tuple[str, ...]:
    if isinstance(layers, str) or not isinstance(layers, (tuple, list)):
        raise ValueError(f"{name} must be a tuple of {network} layer names, got: {layers!r}")
    if not layers:
        raise ValueError(f"{name} must name at least one layer, got: ()")
    unknown = [layer for layer in layers if layer not in known]
    if unknown:
        raise ValueError(f"{name} has unknown layer {unknown[0]!r}; {network} has: {', '.join(known)}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"{name} names a layer twice, got: {tuple(layers)}")
    return tuple(layers)
