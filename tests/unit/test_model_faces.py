"""Faces stay faces: weight maps by numbers, and MTCNN on real photos.

The maps are pure NumPy and checked on hand-made faces. The detector runs the real network
(loaded once for the module); the portrait is scikit-image's astronaut (Eileen Collins, a NASA
photo in the public domain, shipped inside scikit-image's wheel: no download).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from model.errors import ImageError, ModelError
from model.faces import FACE_STYLE, Face, FaceDetector, FaceWeights, box_overlap, face_weights

ROOT = Path(__file__).resolve().parents[2]

# A frontal face as MTCNN reports one (the astronaut's, see test_the_astronaut_s_face_is_found).
ASTRONAUT_FACE = Face(
    box=(182.0, 64.0, 83.0, 107.0),
    confidence=0.999,
    landmarks={
        "left_eye": (204.0, 100.0),
        "right_eye": (245.0, 102.0),
        "nose": (224.0, 126.0),
        "mouth_left": (202.0, 139.0),
        "mouth_right": (244.0, 140.0),
    },
)


def centred_face(height: int = 200, width: int = 300, size: float = 60.0) -> Face:
    """A frontal face of ``size`` pixels across in the middle of a height x width picture."""
    x, y = width / 2 - size / 2, height / 2 - size * 0.6
    return Face(
        box=(x, y, size, size * 1.2),
        confidence=1.0,
        landmarks={
            "left_eye": (x + 0.3 * size, y + 0.4 * size),
            "right_eye": (x + 0.7 * size, y + 0.4 * size),
            "nose": (x + 0.5 * size, y + 0.65 * size),
            "mouth_left": (x + 0.32 * size, y + 0.9 * size),
            "mouth_right": (x + 0.68 * size, y + 0.9 * size),
        },
    )


def moved(face: Face, dx: float, dy: float = 0.0) -> Face:
    """The same face ``dx`` pixels right and ``dy`` down."""
    x, y, width, height = face.box
    landmarks = {name: (px + dx, py + dy) for name, (px, py) in face.landmarks.items()}
    return Face((x + dx, y + dy, width, height), face.confidence, landmarks)


def at(weights: np.ndarray, point: tuple[float, float]) -> float:
    """The map's value at the pixel holding the point (x, y)."""
    x, y = point
    return float(weights[int(y), int(x)])


def box_centre(face: Face) -> tuple[float, float]:
    x, y, width, height = face.box
    return x + width / 2, y + height / 2


def made(weights: FaceWeights | None) -> FaceWeights:
    assert weights is not None
    return weights


# -- the maps ---------------------------------------------------------------------------------


def test_no_faces_no_maps() -> None:
    assert face_weights((200, 300), []) is None


def test_the_maps_are_float32_the_size_of_the_picture() -> None:
    weights = made(face_weights((200, 300), [centred_face()]))

    assert weights.content.shape == weights.style.shape == weights.shape == (200, 300)
    assert weights.content.dtype == weights.style.dtype == np.float32


def test_the_maps_cover_the_box_and_protect_eyes_and_mouth_most() -> None:
    face = ASTRONAUT_FACE
    weights = made(face_weights((512, 512), [face], face_style=0.3, feature_style=0.1))

    assert at(weights.style, box_centre(face)) < 1
    assert at(weights.content, box_centre(face)) > 1
    for eye in ("left_eye", "right_eye"):
        assert at(weights.style, face.landmarks[eye]) <= 0.3
        assert at(weights.style, face.landmarks[eye]) == pytest.approx(0.1)
        assert at(weights.content, face.landmarks[eye]) == pytest.approx(6.0)
    mouth_x = (face.landmarks["mouth_left"][0] + face.landmarks["mouth_right"][0]) / 2
    assert at(weights.style, (mouth_x, 139.5)) == pytest.approx(0.1)
    # Nowhere stronger than eyes and mouth, nowhere weaker than the rest of the picture.
    assert weights.style.min() == pytest.approx(0.1)
    assert weights.style.max() == 1.0
    assert weights.content.min() == 1.0
    assert weights.content.max() == pytest.approx(6.0)


def test_a_face_without_landmarks_takes_the_face_weights_at_its_centre() -> None:
    face = Face(box=(100.0, 50.0, 80.0, 100.0), confidence=1.0)
    weights = made(face_weights((200, 300), [face], face_style=0.4, face_content=2.5))

    assert at(weights.style, box_centre(face)) == pytest.approx(0.4)
    assert at(weights.content, box_centre(face)) == pytest.approx(2.5)
    assert weights.style.min() == pytest.approx(0.4)  # no eyes, no mouth: the face is the floor


def test_the_maps_are_exactly_1_away_from_faces() -> None:
    weights = made(face_weights((200, 300), [centred_face(200, 300, size=60)]))

    for row, column in [(0, 0), (0, -1), (-1, 0), (-1, -1), (100, 10), (100, -10)]:
        assert weights.style[row, column] == 1.0
        assert weights.content[row, column] == 1.0
    # The face is a patch: most of the picture is untouched.
    assert np.mean(weights.style == 1.0) > 0.8
    assert np.array_equal(weights.style == 1.0, weights.content == 1.0)


def test_l_bfgs_steps_as_usual_on_large_faces_and_shorter_on_small_ones() -> None:
    from model.render import SMALL_FACE_DAMPING, _face_preconditioner

    large, centred = centred_face(200, 300, size=80), centred_face(200, 300, size=20)
    dx, dy = 20 - centred.box[0], 20 - centred.box[1]  # the small one moved to the top left
    small = Face(
        box=(20.0, 20.0, *centred.box[2:]),
        confidence=1.0,
        landmarks={name: (x + dx, y + dy) for name, (x, y) in centred.landmarks.items()},
    )
    assert _face_preconditioner(made(face_weights((200, 300), [large]))) is None  # plain steps
    weights = made(face_weights((200, 300), [large, small]))
    preconditioner = _face_preconditioner(weights)
    assert preconditioner is not None
    shape = preconditioner[0, ..., 0]
    assert shape.shape == (200, 300)
    # As usual away from small faces, the large one included; shorter on the small one, by its
    # content weight to the power SMALL_FACE_DAMPING, most on its eyes and mouth.
    assert np.all(shape[weights.detail == 0] == 1.0)
    on_small = weights.detail == 1.0
    assert on_small.any() and weights.content[on_small].max() > 3
    np.testing.assert_allclose(shape[on_small], weights.content[on_small] ** -SMALL_FACE_DAMPING, rtol=1e-5)
    assert shape.min() < 0.5


def test_the_feather_falls_from_the_face_to_1_without_a_step() -> None:
    face = Face(box=(100.0, 50.0, 100.0, 100.0), confidence=1.0)
    weights = made(face_weights((200, 400), [face]))

    row = weights.style[100, 150:]  # from the centre of the face to the right edge
    steps = np.diff(row)
    assert np.all(steps >= 0)  # rising to 1, never back
    assert row[0] == pytest.approx(FACE_STYLE) and row[-1] == 1.0
    assert np.abs(steps).max() < 0.1  # over many pixels, not at once


def test_a_small_face_is_protected_and_feathered_to_its_size() -> None:
    face = centred_face(64, 64, size=10)
    weights = made(face_weights((64, 64), [face]))

    assert at(weights.style, box_centre(face)) < 1
    assert at(weights.style, face.landmarks["left_eye"]) == pytest.approx(0.1, abs=0.05)
    assert np.count_nonzero(weights.style < 1) < 0.1 * 64 * 64  # a small patch
    assert weights.style[0, 0] == 1.0


def test_only_small_faces_eyes_and_mouths_are_marked_for_detail() -> None:
    # Eyes 0.4 of the face's size apart: 12 px for a 30 px face, 36 px for a 90 px one.
    small, large = centred_face(200, 200, size=30), moved(centred_face(200, 200, size=90), 200)
    weights = made(face_weights((200, 400), [small, large]))

    for landmark in ("left_eye", "right_eye", "mouth_left"):
        assert at(weights.detail, small.landmarks[landmark]) == 1.0
        assert at(weights.detail, large.landmarks[landmark]) == 0.0
    # Not the skin between them: a small face is painted there as the rest is.
    x, y, width, height = small.box
    assert at(weights.detail, (x + width / 2, y + 0.25 * width)) == 0.0  # the forehead
    assert at(weights.region, (x + width / 2, y + 0.25 * width)) > 0.99
    # Where the eyes and mouth are most protected, and only on the small face.
    alone = made(face_weights((200, 400), [small]))
    features = alone.content == alone.content.max()
    assert np.all(weights.detail[features] == 1.0) and not weights.detail[:, 200:].any()
    # "Small" is in pixels of the picture: at a third of the size, the large face is small too.
    assert made(face_weights((200, 400), [large], small_face=40.0)).detail.max() == 1.0
    assert not made(face_weights((200, 400), [small], small_face=10.0)).detail.any()
    # Pooled with the other maps.
    assert weights.pooled(1).detail.shape == (100, 200) and weights.pooled(1).detail.max() > 0.9


def test_a_face_cut_by_the_edge_is_clipped() -> None:
    # Half the face past the left edge, as MTCNN reports it (boxes are not fitted to the image).
    face = Face(box=(-40.0, 20.0, 80.0, 100.0), confidence=1.0, landmarks={"right_eye": (20.0, 55.0)})
    weights = made(face_weights((150, 200), [face]))

    assert weights.style.shape == (150, 200)
    assert weights.style[70, 0] == pytest.approx(FACE_STYLE)  # the box's centre line, at the edge
    assert at(weights.style, (20.0, 55.0)) == pytest.approx(0.1)
    assert weights.style[70, -1] == 1.0


def test_a_face_wholly_outside_the_picture_changes_nothing() -> None:
    face = Face(box=(500.0, 500.0, 50.0, 60.0), confidence=1.0, landmarks={"left_eye": (510.0, 520.0)})
    weights = made(face_weights((100, 100), [face]))

    assert np.all(weights.style == 1.0) and np.all(weights.content == 1.0)


def test_several_faces_each_get_their_maps() -> None:
    left, right = centred_face(200, 200, size=50), moved(centred_face(200, 200, size=70), 200)
    weights = made(face_weights((200, 400), [left, right]))

    for face in (left, right):
        assert at(weights.style, box_centre(face)) < 1
        assert at(weights.style, face.landmarks["right_eye"]) == pytest.approx(0.1)
    assert weights.style[100, 200] == 1.0  # between them


def test_overlapping_faces_take_the_strongest_protection() -> None:
    first = Face(box=(40.0, 40.0, 80.0, 100.0), confidence=1.0, landmarks={"left_eye": (60.0, 80.0)})
    second = Face(box=(90.0, 50.0, 80.0, 100.0), confidence=1.0, landmarks={"left_eye": (110.0, 90.0)})
    both = made(face_weights((200, 220), [first, second]))
    alone = [made(face_weights((200, 220), [face])) for face in (first, second)]

    assert np.array_equal(both.style, np.minimum(alone[0].style, alone[1].style))
    assert np.array_equal(both.content, np.maximum(alone[0].content, alone[1].content))


def test_a_profile_s_eyes_are_sized_by_the_box() -> None:
    # MTCNN guesses a profile's hidden eye next to the seen one: an eye distance of 2 pixels
    # must not shrink the eyes to dots.
    profile = Face(
        box=(100.0, 50.0, 80.0, 100.0),
        confidence=1.0,
        landmarks={"left_eye": (120.0, 90.0), "right_eye": (122.0, 90.0), "mouth_right": (125.0, 130.0)},
    )
    weights = made(face_weights((200, 300), [profile]))

    for dx in (-6.0, 0.0, 6.0):
        assert at(weights.style, (121.0 + dx, 90.0)) == pytest.approx(0.1)
    assert at(weights.style, (125.0, 130.0)) == pytest.approx(0.1)  # one mouth corner: a dot


def test_the_weights_follow_their_arguments() -> None:
    face = centred_face()
    weights = made(
        face_weights(
            (200, 300), [face], face_style=0.5, feature_style=0.2, face_content=2.0, feature_content=4.0
        )
    )

    assert weights.style.min() == pytest.approx(0.2)
    assert weights.content.max() == pytest.approx(4.0)
    assert at(weights.style, face.landmarks["left_eye"]) == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"face_style": 0.0}, "face_style must be between 0 and 1"),
        ({"face_style": 1.5}, "face_style must be between 0 and 1"),
        ({"face_style": math.nan}, "face_style must be between 0 and 1"),
        ({"feature_style": 0.5}, r"feature_style must be between 0 \(excluded\) and face_style \(0.15\)"),
        ({"feature_style": 0}, "feature_style must be between 0"),
        ({"face_content": 0.5}, "face_content must be at least 1"),
        ({"face_content": True}, "face_content must be at least 1"),
        ({"feature_content": 2.0}, r"feature_content must be at least face_content \(3.0\)"),
    ],
)
def test_weights_out_of_range_are_refused(arguments: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        face_weights((10, 10), [centred_face(10, 10, 4)], **arguments)


@pytest.mark.parametrize("shape", [(0, 10), (10,), (10.0, 10), (-1, 5), [10, 10]])
def test_a_bad_shape_is_refused(shape: object) -> None:
    with pytest.raises(ValueError, match="shape must be"):
        face_weights(shape, [])  # type: ignore[arg-type]


# -- pooled to a VGG block -------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(64, 96), (63, 95), (37, 50), (1, 7)])
@pytest.mark.parametrize("levels", [0, 1, 2, 3, 4])
def test_pooled_maps_are_the_size_of_the_block(shape: tuple[int, int], levels: int) -> None:
    height, width = shape
    face = Face(box=(width / 4, height / 4, width / 2, height / 2), confidence=1.0)
    pooled = made(face_weights(shape, [face])).pooled(levels)

    expected = (math.ceil(height / 2**levels), math.ceil(width / 2**levels))
    assert pooled.shape == expected
    assert pooled.content.dtype == pooled.style.dtype == np.float32
    # The sizes of VGG's feature maps, as Keras' pooling computes them.
    block = keras.layers.MaxPooling2D(2, padding="same")
    size: tuple[int | None, ...] = (1, height, width, 1)
    for _ in range(levels):
        size = block.compute_output_shape(size)
    assert pooled.shape == size[1:3]


@pytest.mark.parametrize("shape", [(200, 300), (201, 299)])
def test_pooling_keeps_1_away_from_faces_and_the_face_on_it(shape: tuple[int, int]) -> None:
    weights = made(face_weights(shape, [centred_face(*shape, size=60)]))

    for levels in range(5):
        pooled = weights.pooled(levels)
        for corner in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
            assert pooled.style[corner] == 1.0 and pooled.content[corner] == 1.0
        centre = (pooled.shape[0] // 2, pooled.shape[1] // 2)
        assert pooled.style[centre] < 1 and pooled.content[centre] > 1
        assert pooled.style.min() >= 0.1 - 1e-6 and pooled.content.max() <= 6.0 + 1e-5


def test_pooling_averages_each_2x2_window_and_a_cut_one_over_what_it_holds() -> None:
    style = np.arange(15, dtype=np.float32).reshape(3, 5)
    pooled = FaceWeights(np.ones_like(style), style).pooled(1)

    expected = np.array([[3.0, 5.0, 6.5], [10.5, 12.5, 14.0]], np.float32)
    assert np.array_equal(pooled.style, expected)
    assert np.array_equal(pooled.content, np.ones((2, 3), np.float32))
    assert FaceWeights(style, style).pooled(0).style is style


def test_pooling_is_keras_average_pooling_with_same_padding() -> None:
    style = np.random.default_rng(0).uniform(0.1, 1.0, (1, 45, 31, 1)).astype(np.float32)
    block = keras.layers.AveragePooling2D(2, padding="same")

    pooled = FaceWeights(style[0, ..., 0], style[0, ..., 0]).pooled(2)

    reference = keras.ops.convert_to_numpy(block(block(style)))[0, ..., 0]
    np.testing.assert_allclose(pooled.style, reference, rtol=1e-6)


@pytest.mark.parametrize("levels", [-1, 1.0, True])
def test_pooling_wants_a_whole_number_of_levels(levels: object) -> None:
    weights = FaceWeights(np.ones((4, 4), np.float32), np.ones((4, 4), np.float32))
    with pytest.raises(ValueError, match="levels must be a whole number"):
        weights.pooled(levels)  # type: ignore[arg-type]


# -- faces and boxes ---------------------------------------------------------------------------


def test_a_face_scales_with_its_image() -> None:
    doubled = ASTRONAUT_FACE.scaled(2.0)

    assert doubled.box == (364.0, 128.0, 166.0, 214.0)
    assert doubled.landmarks["mouth_right"] == (488.0, 280.0)
    assert doubled.confidence == ASTRONAUT_FACE.confidence
    assert doubled.scaled(0.5) == ASTRONAUT_FACE
    assert hash(doubled.scaled(0.5)) == hash(ASTRONAUT_FACE)  # frozen: usable as a key
    with pytest.raises(ValueError, match="factor must be a positive number"):
        ASTRONAUT_FACE.scaled(0)


def test_a_face_needs_a_box_with_a_size_and_known_landmarks() -> None:
    with pytest.raises(ValueError, match="positive size"):
        Face(box=(0.0, 0.0, 0.0, 10.0), confidence=1.0)
    with pytest.raises(ValueError, match="landmarks must be among"):
        Face(box=(0.0, 0.0, 10.0, 10.0), confidence=1.0, landmarks={"mouth": (5.0, 5.0)})


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (20, 0, 10, 10), 0.0),
        ((0, 0, 10, 10), (10, 0, 10, 10), 0.0),  # touching
        ((0, 0, 10, 10), (5, 0, 10, 10), 50 / 150),
        ((0, 0, 10, 10), (2, 2, 5, 5), 25 / 100),  # inside
        ((-5, -5, 10, 10), (0, 0, 10, 10), 25 / 175),
    ],
)
def test_box_overlap_is_intersection_over_union(
    a: tuple[float, float, float, float], b: tuple[float, float, float, float], overlap: float
) -> None:
    assert box_overlap(a, b) == pytest.approx(overlap)
    assert box_overlap(b, a) == pytest.approx(overlap)


# -- the detector ------------------------------------------------------------------------------


def test_importing_faces_loads_neither_tensorflow_nor_mtcnn() -> None:
    # In a fresh interpreter: this one has TensorFlow already, from other tests.
    code = "import sys, model.faces; print(sorted({'tensorflow', 'keras', 'mtcnn'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def detector() -> Iterator[FaceDetector]:
    """One detector for the module: the network loads on the first detection (seconds)."""
    yield FaceDetector()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """Eileen Collins, 512 x 512: NASA, public domain; in scikit-image's wheel (no download)."""
    from skimage import data

    return np.asarray(data.astronaut(), np.uint8)


def test_min_confidence_is_a_probability() -> None:
    with pytest.raises(ValueError, match="min_confidence must be between 0 and 1"):
        FaceDetector(min_confidence=1.5)


def test_the_detector_wants_an_rgb_image(detector: FaceDetector) -> None:
    with pytest.raises(ImageError, match=r"\(H, W, 3\) uint8"):
        detector.detect(np.zeros((32, 32), np.uint8))


def test_a_flat_gradient_has_no_face(detector: FaceDetector) -> None:
    gradient = np.zeros((240, 320, 3), np.uint8)
    gradient[..., 0] = np.linspace(0, 255, 320, dtype=np.uint8)[np.newaxis, :]
    gradient[..., 1] = np.linspace(0, 255, 240, dtype=np.uint8)[:, np.newaxis]

    assert detector.detect(gradient) == []
    assert detector.detect(np.full((8, 8, 3), 128, np.uint8)) == []  # smaller than any face


@pytest.mark.slow
def test_the_astronaut_s_face_is_found(detector: FaceDetector, astronaut: np.ndarray) -> None:
    faces = detector.detect(astronaut)

    assert len(faces) == 1
    face = faces[0]
    assert face.confidence >= 0.9
    # Where MTCNN 1.0 puts it, checked by eye on the photo.
    assert box_overlap(face.box, ASTRONAUT_FACE.box) > 0.8
    x, y, width, height = face.box
    assert set(face.landmarks) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
    for px, py in face.landmarks.values():
        assert x <= px <= x + width and y <= py <= y + height
    lm = face.landmarks
    assert lm["left_eye"][0] < lm["nose"][0] < lm["right_eye"][0]
    assert max(lm["left_eye"][1], lm["right_eye"][1]) < lm["nose"][1] < lm["mouth_left"][1]
    # To the sub-pixel, not rounded to whole pixels as mtcnn's JSON output is: on a small face
    # half a pixel is a sizeable part of the eye distance.
    coordinates = [*face.box, *(c for point in lm.values() for c in point)]
    assert sum(c != round(c) for c in coordinates) >= len(coordinates) - 1


@pytest.mark.slow
def test_faces_come_largest_first_and_scale_with_the_image(
    detector: FaceDetector, astronaut: np.ndarray
) -> None:
    half = np.asarray(Image.fromarray(astronaut).resize((256, 256), Image.Resampling.LANCZOS))
    group = np.zeros((512, 768, 3), np.uint8)
    group[:, :512] = astronaut
    group[128:384, 512:] = half

    large, small = detector.detect(group)

    assert box_overlap(large.box, ASTRONAUT_FACE.box) > 0.8
    assert box_overlap(small.box, moved(ASTRONAUT_FACE.scaled(0.5), 512, 128).box) > 0.6
    # The half-size photo's face, scaled back, is the full-size one.
    alone = detector.detect(half)
    assert box_overlap(alone[0].scaled(2.0).box, ASTRONAUT_FACE.box) > 0.7


@pytest.mark.slow
def test_a_face_cut_by_the_edge_keeps_its_whole_box(
    detector: FaceDetector, astronaut: np.ndarray
) -> None:
    cut = np.ascontiguousarray(astronaut[:, 200:])  # the left fifth of the face is gone

    faces = detector.detect(cut)

    assert len(faces) == 1
    assert faces[0].box[0] < 0  # reaches past the edge, as the face does
    weights = made(face_weights(cut.shape[:2], faces))
    assert weights.style[110, 0] < 1


@pytest.mark.slow
def test_the_detector_refuses_another_keras_backend() -> None:
    # mtcnn builds its networks with tf.keras, which is Keras 3 on the backend set: on jax it
    # fails deep inside (a jax array has no .numpy()) after building for half a minute. We say
    # so at once instead. Keras' numpy backend stands for jax here: it needs nothing installed.
    code = (
        "import numpy as np\n"
        "from model.faces import FaceDetector\n"
        "FaceDetector().detect(np.zeros((32, 32, 3), np.uint8))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "numpy"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    assert ModelError.__name__ in result.stderr
    assert "face detection runs on Keras' tensorflow backend, not 'numpy'" in result.stderr
