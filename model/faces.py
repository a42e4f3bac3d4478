"""Faces stay faces: find the faces on a photo and weigh the losses so that they keep their eyes.

Neural style dissolves eyes and mouths. Spatial control of the losses (Selim et al. 2016,
"Painting style transfer for head portraits"; Gatys et al. 2017, "Controlling perceptual factors
in neural style transfer") keeps them: the content loss weighs more and the style loss less on
faces, most of all on the eyes and the mouth, while the rest of the picture keeps the full style.

- ``FaceDetector`` finds faces and five landmarks with MTCNN (Zhang et al. 2016, the ``mtcnn``
  package, whose weights ship in its wheel). TensorFlow and mtcnn are imported on the first
  detection, never by importing this module.
- ``face_weights`` turns the faces into ``FaceWeights``, a content map and a style map the size
  of the photo, in pure NumPy; ``FaceWeights.pooled`` brings them down to a VGG block's size.

Coordinates are in pixels of the image the face was found on, continuous: (0, 0) is the top-left
corner of the top-left pixel, x goes right and y down, so the pixel in row i, column j has its
centre at (j + 0.5, i + 0.5), and resizing the image by a factor scales every coordinate by it.
"""

from __future__ import annotations

import math
import numbers
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model.errors import ModelError, WeightsError
from model.images import check_rgb

# MTCNN's five landmarks. Left and right are as seen on the image: ``left_eye`` is the person's
# right eye.
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

Box = tuple[float, float, float, float]  # x, y, width, height
Point = tuple[float, float]  # x, y

# The style weight on faces at the deeper style layers, against 1 elsewhere (the renderer weighs
# the faces' own Gram matrices there by it; at blocks 1 and 2 faces share the picture's). At 0.3 the astronaut's landmarks moved further with faces on (0.058 eye
# distances) than off (0.015): her face's own Gram matrix asks it alone to hold all of The
# Starry Night's textures, which the whole picture's Gram matrix did not.
FACE_STYLE = 0.15

# The face region, in units of the ellipse inscribed in the box: full protection a little past
# it (MTCNN's boxes stop at the brows, and the forehead is face too), then fading to nothing
# over a further 40% of each semi-axis. Being relative, the feather is as wide as the face is
# large: a few pixels for a face in a crowd, tens for a portrait.
_FACE_FULL = 1.1
_FACE_FEATHER = 0.4

# Eyes and mouth, in units of the eye distance. An eye (with its lids and lashes) is about half
# an eye distance wide; a mouth about as wide as the eyes are apart, its lips a quarter high.
_EYE_FULL, _EYE_FEATHER = 0.3, 0.25
_MOUTH_FULL, _MOUTH_FEATHER = 0.2, 0.25

# A frontal face's eyes are 0.42-0.51 of MTCNN's box width apart (five portraits measured). In a
# profile they nearly meet (the far eye is hidden, and guessed next to the near one), which
# would shrink the eyes and mouth to dots: below this fraction of the box width, the box
# decides their size.
_MIN_EYE_DISTANCE = 0.3

# A face whose eyes are closer than this, in pixels of the picture, is small: block4_conv2 (one
# position per 8 pixels) sees fewer than 4 positions between its eyes. The renderer keeps such
# faces' eyes and mouth at a shallower layer too. Only there: that term slows the painting of the
# rest. At 24 px the synthetic group's larger face (eyes 27-29 px apart at 480-512 px) was not
# small, and its landmarks moved 0.043-0.059 eye distances; small, 0.019-0.041 (bench/NOTES.md).
SMALL_FACE = 32.0


@dataclass(frozen=True)
class Face:
    """A face found on an image: its box, how sure the detector is, and its landmarks.

    ``box`` is (x, y, width, height) in pixels of that image (see the module's note on
    coordinates); it may reach past the image for a face cut by its edge. ``landmarks`` maps
    some or all of ``LANDMARKS`` to (x, y); a face without landmarks is protected as a whole.
    """

    box: Box
    confidence: float
    landmarks: dict[str, Point] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        x, y, width, height = self.box
        if not all(math.isfinite(v) for v in self.box) or width <= 0 or height <= 0:
            raise ValueError(
                f"box must be (x, y, width, height) with a positive size, got: {self.box!r}"
            )
        unknown = sorted(set(self.landmarks) - set(LANDMARKS))
        if unknown:
            raise ValueError(
                f"landmarks must be among {', '.join(LANDMARKS)}, got: {', '.join(unknown)}"
            )

    def scaled(self, factor: float) -> Face:
        """The same face on the image resized by ``factor`` (2 on an image twice as large)."""
        if not _is_number(factor) or factor <= 0:
            raise ValueError(f"factor must be a positive number, got: {factor!r}")
        x, y, width, height = self.box
        return Face(
            box=(x * factor, y * factor, width * factor, height * factor),
            confidence=self.confidence,
            landmarks={k: (px * factor, py * factor) for k, (px, py) in self.landmarks.items()},
        )


def box_overlap(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, width, height) boxes: 1 the same, 0 apart."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    across = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    down = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    intersection = across * down
    union = aw * ah + bw * bh - intersection
    return intersection / union if union > 0 else 0.0


class FaceDetector:
    """Finds faces and their landmarks with MTCNN, on the CPU.

    The network is loaded on the first ``detect`` (TensorFlow's import takes seconds) and kept;
    after that a 512-pixel photo takes about 0.3-0.5 s on two cores. MTCNN finds faces down to
    about 20 pixels across: detect on the picture at the size it will be painted, not smaller.

    Raises ``WeightsError`` on the first ``detect`` if mtcnn is not installed or its weights
    cannot be read, and ``ModelError`` if Keras runs on a backend other than TensorFlow (mtcnn
    builds its networks with ``tf.keras``, which is Keras 3 on whichever backend is set).
    """

    def __init__(self, min_confidence: float = 0.9) -> None:
        if not _is_number(min_confidence) or not 0 <= min_confidence <= 1:
            raise ValueError(f"min_confidence must be between 0 and 1, got: {min_confidence!r}")
        self.min_confidence = float(min_confidence)
        self._network: Any = None
        self._loading = threading.Lock()

    def detect(self, image: np.ndarray) -> list[Face]:
        """The faces on an ``(H, W, 3)`` uint8 RGB image, largest first.

        Only faces found with ``min_confidence`` or more are kept.

        Raises ``ImageError`` if ``image`` is not such an array.
        """
        check_rgb(image)
        network = self._loaded()
        # Boxes not fitted to the image: a face cut by the edge keeps its whole box, so the face
        # region drawn from it stays centred on the face rather than on its visible part. As
        # arrays, not mtcnn's JSON, which rounds boxes and landmarks to whole pixels: on a face
        # whose eyes are 13 px apart, that rounding alone moves a landmark by up to 0.05 eye
        # distances, as much as the protection of faces is meant to allow.
        found = network.detect_faces(image, fit_to_image=False, box_format="xyxy", output_type="numpy")
        faces = [_face_of(row) for row in np.asarray(found, np.float64).reshape(-1, _MTCNN_COLUMNS)]
        kept = [face for face in faces if face.confidence >= self.min_confidence]
        return sorted(kept, key=lambda face: face.box[2] * face.box[3], reverse=True)

    def _loaded(self) -> Any:
        with self._loading:
            if self._network is None:
                self._network = _load_mtcnn()
            return self._network


def _load_mtcnn() -> Any:
    """MTCNN's three networks with the weights of its wheel; the imports happen here, not before."""
    try:
        import tensorflow as tf
        from mtcnn import MTCNN
    except ImportError as exc:
        raise WeightsError(
            f"face detection needs the mtcnn package (pip install 'mtcnn>=1.0'): {exc}"
        ) from exc
    backend = tf.keras.backend.backend()
    if backend != "tensorflow":
        raise ModelError(
            f"face detection runs on Keras' tensorflow backend, not {backend!r}: mtcnn builds its "
            "networks with tf.keras (set KERAS_BACKEND=tensorflow)"
        )
    try:
        # On the CPU, as mtcnn does by default: its networks are small, and a GPU's memory is the
        # renderer's.
        return MTCNN(stages="face_and_landmarks_detection", device="CPU:0")
    except (OSError, ValueError, EOFError) as exc:  # weights missing or damaged
        raise WeightsError(f"cannot load the face detector's weights: {exc}") from exc


# mtcnn's array output, a row per face: the image's index, the box's corners x1, y1, x2, y2, the
# confidence, then the landmarks' x coordinates and their y coordinates, each in this order.
_MTCNN_COLUMNS = 16
_MTCNN_LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def _face_of(row: np.ndarray) -> Face:
    """A ``Face`` from one of mtcnn's array rows (``_MTCNN_COLUMNS``), to the sub-pixel."""
    x1, y1, x2, y2, confidence = (float(v) for v in row[1:6])
    xs, ys = row[6:11], row[11:16]
    landmarks = {name: (float(x), float(y)) for name, x, y in zip(_MTCNN_LANDMARKS, xs, ys)}
    # A face a pixel across at the least: a degenerate box must not fail a whole detection.
    return Face((x1, y1, max(x2 - x1, 1.0), max(y2 - y1, 1.0)), confidence, landmarks)


@dataclass(frozen=True)
class FaceWeights:
    """Per-pixel weights of the content and style losses (spatial control, Gatys et al. 2017).

    ``content`` and ``style`` are ``(H, W)`` float32 maps, exactly 1.0 away from faces, so that
    multiplying a loss by them changes nothing there. ``content`` is larger on faces and largest
    on eyes and mouth; ``style`` smaller on faces (never 0) and smallest on eyes and mouth.
    """

    content: np.ndarray  # (H, W) float32
    style: np.ndarray  # (H, W) float32
    # How much each pixel belongs to a face (eyes and mouth included), 0..1; derived from
    # ``style`` when not given.
    region: np.ndarray = field(default=None, compare=False)  # type: ignore[arg-type]
    # How much each pixel belongs to the eyes or mouth of a small face, one the deep content
    # layer sees as too few positions to keep them (``face_weights``' ``small_face``), 0..1;
    # none when not given.
    detail: np.ndarray = field(default=None, compare=False)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        if self.content.ndim != 2 or self.content.shape != self.style.shape:
            raise ValueError(
                f"content and style must be (H, W) maps of one shape, got: {self.content.shape} "
                f"and {self.style.shape}"
            )
        if self.region is None:
            lowest = float(self.style.min())
            region = (1 - self.style) / (1 - lowest) if lowest < 1 else np.zeros_like(self.style)
            object.__setattr__(self, "region", region.astype(np.float32))
        if self.detail is None:
            object.__setattr__(self, "detail", np.zeros_like(self.style))

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the maps."""
        height, width = self.content.shape
        return height, width

    def pooled(self, levels: int) -> FaceWeights:
        """The maps at a VGG block ``levels`` 2x2 poolings down, by 2x2 average pooling.

        Each pooling halves the size rounding up, as Keras' ``MaxPooling2D(2, padding="same")``
        does: (H, W) becomes (ceil(H / 2**levels), ceil(W / 2**levels)). Windows cut by the
        bottom or right edge average the pixels they hold, so 1.0 away from faces stays 1.0.
        """
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 0:
            raise ValueError(f"levels must be a whole number, 0 or more, got: {levels!r}")
        maps: tuple[np.ndarray, ...] = (self.content, self.style, self.region, self.detail)
        for _ in range(levels):
            maps = tuple(average_pool(each) for each in maps)
        return FaceWeights(*maps)


def average_pool(weights: np.ndarray) -> np.ndarray:
    """2x2 average pooling, stride 2, 'same' padding: (H, W) to (ceil(H / 2), ceil(W / 2)).

    An odd last row or column is repeated before pooling, which averages a cut window over the
    pixels it holds (as TensorFlow's 'same' average pooling does, leaving the padding out).
    """
    height, width = weights.shape
    padded = np.pad(weights, ((0, height % 2), (0, width % 2)), mode="edge")
    windows = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2)  # (h, 2, w, 2)
    return windows.mean(axis=(1, 3), dtype=weights.dtype)


def face_weights(
    shape: tuple[int, int],
    faces: Sequence[Face],
    *,
    face_style: float = FACE_STYLE,
    feature_style: float = 0.1,
    face_content: float = 3.0,
    feature_content: float = 6.0,
    small_face: float = SMALL_FACE,
) -> FaceWeights | None:
    """Content and style weights for a picture of ``shape`` (H, W) with ``faces`` on it.

    Each face is a feathered ellipse fitted to its box; its eyes and mouth are feathered blobs
    sized by the eye distance. Inside a face the style weighs ``face_style`` (0 to 1) and the
    content ``face_content`` (1 or more); on the eyes and mouth ``feature_style`` and
    ``feature_content``; the feathers blend each into the weight around it, and away from faces
    both are exactly 1. Faces cut by the edge are clipped; where faces overlap, the strongest
    protection wins. The eyes and mouth of faces whose eyes are less than ``small_face`` pixels
    apart (``feature_scale``) are also marked in the ``detail`` map.

    Returns None when there are no faces: the caller renders as it would without them.
    Raises ``ValueError`` on a shape or a weight out of its range.
    """
    _check_shape(shape)
    _check_weights(face_style, feature_style, face_content, feature_content)
    if not faces:
        return None
    face = np.zeros(shape, np.float64)  # how much of a face each pixel is, 0..1
    features = np.zeros(shape, np.float64)  # how much of an eye or a mouth
    small = np.zeros(shape, np.float64)  # how much of a small face's eyes or mouth
    for each in faces:
        _paint_face(face, each)
        _paint_features(features, each)
        if feature_scale(each) < small_face:  # its eyes and mouth: the skin is painted as the rest
            _paint_features(small, each)
    # Each mask moves its weight from 1 towards its target; the stronger protection wins.
    style = np.minimum(1 - face * (1 - face_style), 1 - features * (1 - feature_style))
    content = np.maximum(1 + face * (face_content - 1), 1 + features * (feature_content - 1))
    region = np.maximum(face, features)
    return FaceWeights(*(each.astype(np.float32) for each in (content, style, region, small)))


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """0 up to ``edge0``, 1 from ``edge1``, 3t² - 2t³ between (t going 0 to 1).

    Flat at both ends, so a feather shows no seam, and exactly 0 and 1 outside it, so the maps
    are exactly 1 away from faces.
    """
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def segment_distance(xs: np.ndarray, ys: np.ndarray, start: Point, end: Point) -> np.ndarray:
    """Distance from each point (xs, ys) to the segment ``start``-``end`` (a point if they meet)."""
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0.0, 1.0) if length2 > 0 else 0.0
    return np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy))


def feature_scale(face: Face) -> float:
    """The eye distance, in pixels, that sizes a face's eyes and mouth.

    With one eye or none, or eyes as close as a profile's, the box's width decides instead.
    """
    floor = _MIN_EYE_DISTANCE * face.box[2]
    left, right = face.landmarks.get("left_eye"), face.landmarks.get("right_eye")
    if left is None or right is None:
        return floor
    return max(math.dist(left, right), floor)


def _paint_face(mask: np.ndarray, face: Face) -> None:
    """Raise ``mask``, in place, to the face's feathered ellipse where that is stronger."""
    x, y, width, height = face.box
    centre_x, centre_y, semi_x, semi_y = x + width / 2, y + height / 2, width / 2, height / 2
    reach = _FACE_FULL + _FACE_FEATHER
    window = _window(
        mask.shape,
        (centre_x - reach * semi_x, centre_y - reach * semi_y),
        (centre_x + reach * semi_x, centre_y + reach * semi_y),
    )
    if window is None:
        return
    rows, columns, xs, ys = window
    radius = np.hypot((xs - centre_x) / semi_x, (ys - centre_y) / semi_y)  # 1: inscribed ellipse
    level = 1 - smoothstep(_FACE_FULL, reach, radius)
    np.maximum(mask[rows, columns], level, out=mask[rows, columns])


def _paint_features(mask: np.ndarray, face: Face) -> None:
    """Raise ``mask``, in place, to the face's feathered eyes and mouth where they are stronger.

    Whatever landmarks the face has are used: an eye is a disc, the mouth the segment between
    its corners thickened (one corner alone, a disc).
    """
    scale = feature_scale(face)
    blobs: list[tuple[Point, Point, float, float]] = []  # segment's ends, full radius, feather
    for eye in ("left_eye", "right_eye"):
        if eye in face.landmarks:
            point = face.landmarks[eye]
            blobs.append((point, point, _EYE_FULL * scale, _EYE_FEATHER * scale))
    mouth = [face.landmarks[c] for c in ("mouth_left", "mouth_right") if c in face.landmarks]
    if mouth:
        blobs.append((mouth[0], mouth[-1], _MOUTH_FULL * scale, _MOUTH_FEATHER * scale))
    for start, end, full, feather in blobs:
        reach = full + feather
        window = _window(
            mask.shape,
            (min(start[0], end[0]) - reach, min(start[1], end[1]) - reach),
            (max(start[0], end[0]) + reach, max(start[1], end[1]) + reach),
        )
        if window is None:
            continue
        rows, columns, xs, ys = window
        level = 1 - smoothstep(full, reach, segment_distance(xs, ys, start, end))
        np.maximum(mask[rows, columns], level, out=mask[rows, columns])


def _window(
    shape: tuple[int, ...], top_left: Point, bottom_right: Point
) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
    """The pixels of an image of ``shape`` around a rectangle, and their centres.

    Returns (rows, columns, xs (1, w), ys (h, 1)), or None if the rectangle misses the image.
    Drawing a blob only where it can reach keeps many small faces on a large photo cheap, and
    clips faces at the edge.
    """
    height, width = shape
    x0, x1 = max(0, math.floor(top_left[0])), min(width, math.ceil(bottom_right[0]))
    y0, y1 = max(0, math.floor(top_left[1])), min(height, math.ceil(bottom_right[1]))
    if x0 >= x1 or y0 >= y1:
        return None
    xs = np.arange(x0, x1, dtype=np.float64)[np.newaxis, :] + 0.5
    ys = np.arange(y0, y1, dtype=np.float64)[:, np.newaxis] + 0.5
    return slice(y0, y1), slice(x0, x1), xs, ys


def _check_shape(shape: object) -> None:
    if not (
        isinstance(shape, tuple)
        and len(shape) == 2
        and all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in shape)
        and min(shape) > 0
    ):
        raise ValueError(
            f"shape must be (height, width), two positive whole numbers, got: {shape!r}"
        )


def _check_weights(
    face_style: float, feature_style: float, face_content: float, feature_content: float
) -> None:
    """Style weights in (0, 1], content weights from 1 up, eyes and mouth at least the face's."""
    if not _is_number(face_style) or not 0 < face_style <= 1:
        raise ValueError(f"face_style must be between 0 and 1 (0 excluded), got: {face_style!r}")
    if not _is_number(feature_style) or not 0 < feature_style <= face_style:
        raise ValueError(
            f"feature_style must be between 0 (excluded) and face_style ({face_style}), "
            f"got: {feature_style!r}"
        )
    if not _is_number(face_content) or face_content < 1:
        raise ValueError(f"face_content must be at least 1, got: {face_content!r}")
    if not _is_number(feature_content) or feature_content < face_content:
        raise ValueError(
            f"feature_content must be at least face_content ({face_content}), "
            f"got: {feature_content!r}"
        )


def _is_number(value: object) -> bool:
    """A finite real number; a bool is an int to Python, but never a weight to us."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )
