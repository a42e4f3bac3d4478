"""StyleTransfer end to end: a real render, small enough to take seconds.

The pictures are drawn here rather than read from disk, so the tests need no sample files: a
"photo" of flat shapes and a "painting" of blue and yellow swirls.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from model.errors import ImageError, WeightsError
from model.images import resize_to_longest
from model.losses import gram_matrix, style_loss
from model.network import build_extractor, preprocess
from model.render import StyleTransfer
from model.settings import Progress, RenderSettings
from model.weights import VGG16_LAYERS, bundled_vgg16_path, load_vgg16


def draw_photo(height: int = 48, width: int = 64) -> np.ndarray:
    """A sky, a ground and a dark house with a light window: flat areas and hard edges."""
    y = np.linspace(0, 1, height)[:, np.newaxis, np.newaxis]
    photo = (np.array([90, 150, 230]) * (1 - 0.4 * y)) * np.ones((1, width, 1))
    photo[int(height * 0.7) :] = (70, 120, 40)
    photo[height // 3 : int(height * 0.8), width // 4 : width // 2] = (120, 50, 40)
    photo[height // 2 : height // 2 + 5, width // 3 : width // 3 + 5] = (250, 240, 180)
    return photo.astype(np.uint8)


def draw_painting(size: int = 96) -> np.ndarray:
    """Blue and yellow swirls: nothing like the photo's flat areas."""
    y, x = np.mgrid[0:size, 0:size] / size * 2 * np.pi
    swirl = 0.5 + 0.5 * np.sin(5 * x + 3 * np.sin(4 * y) + 2 * np.cos(3 * x * y / np.pi))
    blue, yellow = np.array([30, 50, 150]), np.array([240, 210, 60])
    return (blue + swirl[..., np.newaxis] * (yellow - blue)).astype(np.uint8)


@pytest.fixture(scope="module")
def weights() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return load_vgg16(bundled_vgg16_path())


@pytest.fixture(scope="module")
def painter(weights: dict[str, tuple[np.ndarray, np.ndarray]]) -> StyleTransfer:
    return StyleTransfer(weights)


def style_distance(
    weights: dict[str, tuple[np.ndarray, np.ndarray]], picture: np.ndarray, painting: np.ndarray
) -> float:
    """neural-style's style loss of ``picture`` against ``painting``, summed over the style layers."""
    layers = RenderSettings().style_layers
    extractor = build_extractor(weights, layers)
    picture_features = extractor(preprocess(picture)[np.newaxis])
    painting_features = extractor(preprocess(painting)[np.newaxis])
    losses = [
        style_loss(ours, gram_matrix(theirs))
        for ours, theirs in zip(picture_features, painting_features)
    ]
    return float(sum(keras.ops.convert_to_numpy(loss) for loss in losses))


@pytest.mark.slow
def test_a_render_takes_on_the_paintings_style(
    painter: StyleTransfer, weights: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    photo, painting = draw_photo(), draw_painting()
    settings = RenderSettings(size=64, iterations=25)
    seen: list[Progress] = []

    picture = painter.render(photo, painting, settings, seen.append)

    assert picture.shape == (48, 64, 3)
    assert picture.dtype == np.uint8
    # Once per iteration, in order; L-BFGS may stop a little early if the loss stalls.
    assert 20 <= len(seen) <= 25
    assert [p.iteration for p in seen] == list(range(1, len(seen) + 1))
    assert all(p.total == 25 for p in seen)
    assert all(a.elapsed_s <= b.elapsed_s for a, b in zip(seen, seen[1:]))
    assert seen[-1].loss < seen[0].loss
    # The picture moved towards the painting's style (at the size the render saw it)...
    painting_seen = resize_to_longest(painting, 64)
    before = style_distance(weights, photo, painting_seen)
    after = style_distance(weights, picture, painting_seen)
    assert after < 0.2 * before, (before, after)
    # ...and is still the photo: the house is darker than the sky above it.
    house, sky = picture[20:36, 18:30].mean(), picture[2:10, 18:30].mean()
    assert house < sky - 30, (house, sky)


@pytest.mark.slow
def test_a_render_is_deterministic_and_a_raising_progress_stops_it(painter: StyleTransfer) -> None:
    photo, painting = draw_photo(), draw_painting()
    settings = RenderSettings(size=32, iterations=4)

    first = painter.render(photo, painting, settings)
    second = painter.render(photo, painting, settings)
    assert np.array_equal(first, second)

    class Cancelled(Exception):
        pass

    calls: list[int] = []

    def cancel_at_the_second(progress: Progress) -> None:
        calls.append(progress.iteration)
        if progress.iteration == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        painter.render(photo, painting, settings, cancel_at_the_second)
    assert calls == [1, 2]


@pytest.mark.slow
def test_the_jax_backend_renders_the_same_picture() -> None:
    pytest.importorskip("jax")
    script = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        from model.render import StyleTransfer
        from model.settings import RenderSettings
        from tests.test_model_render import draw_painting, draw_photo
        picture = StyleTransfer.bundled().render(
            draw_photo(), draw_painting(), RenderSettings(size=32, iterations=4)
        )
        json.dump(picture.tolist(), sys.stdout)
        """
    )
    # A fresh interpreter: Keras picks its backend once, at import.
    env = dict(os.environ, KERAS_BACKEND="jax")
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=pathlib.Path(__file__).parents[1],
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    on_jax = np.array(json.loads(result.stdout), np.uint8)

    on_tensorflow = StyleTransfer.bundled().render(
        draw_photo(), draw_painting(), RenderSettings(size=32, iterations=4)
    )

    assert on_jax.shape == on_tensorflow.shape == (24, 32, 3)
    # Float32 sums in another order: the same picture up to rounding, not bit for bit.
    assert np.abs(on_jax.astype(int) - on_tensorflow).mean() < 1.0


def test_weights_without_every_vgg16_layer_are_refused(
    weights: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    partial = {name: weights[name] for name in VGG16_LAYERS[:-1]}

    with pytest.raises(WeightsError, match="no block5_conv3 layer"):
        StyleTransfer(partial)


@pytest.mark.parametrize(
    ("content", "style", "message"),
    [
        (np.zeros((8, 8), np.uint8), draw_painting(), "the content image must be an"),
        (draw_photo(), np.zeros((8, 8, 4), np.uint8), "the style image must be an"),
        (draw_photo().astype(np.float32), draw_painting(), r"content image .* float32"),
    ],
)
def test_what_is_not_an_rgb_image_is_refused_before_any_work(
    painter: StyleTransfer, content: np.ndarray, style: np.ndarray, message: str
) -> None:
    with pytest.raises(ImageError, match=message):
        painter.render(content, style)
