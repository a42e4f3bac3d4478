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
from dataclasses import replace
from typing import Any

import keras
import numpy as np
import pytest

import model.render as render_module
from model.backend import cpu_has_bfloat16, on_gpu
from model.colour import match_colour_histogram, rgb_to_yiq
from model.errors import ImageError, WeightsError
from model.faces import SMALL_FACE, Face, face_weights, feature_scale
from model.images import load_image, resize_for_render, resize_to_longest
from model.losses import gram_matrix, style_loss
from model.network import build_extractor, preprocess
from model.optimisers import Optimised
from model.render import SMALL_FACE_DAMPING, StyleTransfer
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


def draw_stripes(size: int = 80) -> np.ndarray:
    """Red and white diagonal stripes: another painting to blend with the swirls."""
    y, x = np.mgrid[0:size, 0:size]
    red = ((x + y) // 8) % 2 == 0
    return np.where(red[..., np.newaxis], (200, 30, 30), (245, 245, 235)).astype(np.uint8)


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


def tiny(**changes: Any) -> RenderSettings:
    """Settings for a render of seconds: one scale, no early stop, no face detection, in
    float32 (what "auto" computes in depends on the machine: bfloat16 where the CPU has it)."""
    defaults: dict[str, Any] = {
        "size": 64, "scales": (1.0,), "iterations": (25,), "early_stop": 0.0, "faces": "off",
        "precision": "float32",
    }
    return RenderSettings(**{**defaults, **changes})


@pytest.mark.slow
def test_a_render_takes_on_the_paintings_style(
    painter: StyleTransfer, weights: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    photo, painting = draw_photo(), draw_painting()
    seen: list[Progress] = []

    # From the photo's own colours: in the painting's, this photo's dark house and light sky
    # take the painting's blue and yellow, and their lightness is the style's to decide.
    picture = painter.render(photo, painting, tiny(start_colours="photo"), seen.append)

    assert picture.shape == (48, 64, 3)
    assert picture.dtype == np.uint8
    # Once per iteration, in order; L-BFGS may stop a little early if the loss stalls.
    assert 20 <= len(seen) <= 25
    assert [p.iteration for p in seen] == list(range(1, len(seen) + 1))
    assert all(p.total == 25 and p.size == 64 for p in seen)
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
def test_the_default_schedule_paints_the_style_and_keeps_the_photos_structure(
    painter: StyleTransfer, weights: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    # The defaults as they are (half size then full size, the painting's colours at the start,
    # their weights), on a small picture: the figures users get, in miniature.
    defaults = RenderSettings()
    assert (defaults.scales, defaults.iterations, defaults.style_weight, defaults.start_colours) == (
        (0.5, 1.0), (45, 10), 5e4, "painting"
    )
    assert (defaults.content_layers, defaults.content_weight) == (("block3_conv1", "block4_conv2"), 0.5)
    # A real photo and painting, as shipped (bot/samples, the gallery): the colour start's map
    # is fitted to natural pictures' colours, not to a few flat ones.
    bot = pathlib.Path(__file__).resolve().parents[2] / "bot"
    photo = resize_to_longest(load_image(bot / "samples" / "coffee.jpg"), 128)
    painting = load_image(bot / "paintings" / "starry_night.jpg")
    seen: list[Progress] = []

    picture = painter.render(photo, painting, replace(defaults, size=128, faces="off"), seen.append)

    # Half size, then ten iterations at full size (no more than the early stop's window of 10,
    # which may only shorten the first stage).
    sizes = [p.size for p in seen]
    assert sizes[-10:] == [128] * 10 and 0 < sizes.count(64) <= 45 and len(sizes) == sizes.count(64) + 10
    painting_seen = resize_to_longest(painting, 128)
    before = style_distance(weights, photo, painting_seen)
    after = style_distance(weights, picture, painting_seen)
    assert after < 0.1 * before, (before, after)
    # The photo's shapes are where they were: its luminance and the picture's go together.
    luminance = [rgb_to_yiq(image)[..., 0].ravel() for image in (photo, picture)]
    correlation = np.corrcoef(*luminance)[0, 1]
    assert correlation > 0.5, correlation


@pytest.mark.slow
def test_a_render_starts_from_the_photo_in_the_paintings_colours(painter: StyleTransfer) -> None:
    photo, painting = draw_photo(), draw_painting()
    settings = tiny(iterations=(1,), style_weight=0.0)  # one step that only keeps the content

    own = painter.render(photo, painting, replace(settings, start_colours="photo"))
    matched = painter.render(photo, painting, settings)

    # The painting's palette from the start: its mean colour, where the photo's own start keeps the photo's.
    painting_mean, photo_mean = painting.reshape(-1, 3).mean(0), photo.reshape(-1, 3).mean(0)
    assert np.abs(matched.reshape(-1, 3).mean(0) - painting_mean).max() < 12, matched.reshape(-1, 3).mean(0)
    assert np.abs(own.reshape(-1, 3).mean(0) - photo_mean).max() < 12, own.reshape(-1, 3).mean(0)
    # Only where there is a photo to start from.
    noise = painter.render(photo, painting, replace(settings, init="noise"))
    assert np.abs(noise.reshape(-1, 3).mean(0) - painting_mean).max() > 12


@pytest.mark.slow
def test_coarse_to_fine_paints_small_first_and_ends_at_full_size(painter: StyleTransfer) -> None:
    seen: list[Progress] = []
    settings = tiny(scales=(0.5, 1.0), iterations=(8, 4))

    picture = painter.render(draw_photo(), draw_painting(), settings, seen.append)

    assert picture.shape == (48, 64, 3)
    assert {p.size for p in seen} == {32, 64}
    assert [p.size for p in seen] == sorted(p.size for p in seen)  # small first
    assert [p.iteration for p in seen if p.size == 64] == [9, 10, 11, 12]  # counted on
    assert all(p.total == 12 for p in seen)


@pytest.mark.slow
def test_a_stage_stops_early_once_the_loss_stops_falling(painter: StyleTransfer) -> None:
    for optimiser in ("lbfgs", "adam"):
        seen: list[Progress] = []
        # Asking for a 99% fall every 10 iterations stops the stage after the first 10.
        settings = tiny(iterations=(40,), early_stop=0.99, optimiser=optimiser)

        painter.render(draw_photo(), draw_painting(), settings, seen.append)

        assert len(seen) == 11, optimiser


@pytest.mark.slow
def test_adam_lowers_the_loss_step_by_step(painter: StyleTransfer) -> None:
    seen: list[Progress] = []

    # From the photo's own colours, as the TensorFlow tutorial's Adam starts (the painting's
    # palette would leave it less of the way to go).
    painter.render(draw_photo(), draw_painting(), tiny(optimiser="adam", iterations=(30,), start_colours="photo"),
                   seen.append)

    assert len(seen) == 30
    assert seen[-1].loss < 0.8 * seen[0].loss


@pytest.mark.slow
def test_noise_starts_are_seeded_and_an_image_start_is_used(painter: StyleTransfer) -> None:
    photo, painting = draw_photo(), draw_painting()
    noise = tiny(init="noise", iterations=(2,))

    first, again = painter.render(photo, painting, noise), painter.render(photo, painting, noise)
    other = painter.render(photo, painting, tiny(init="noise", iterations=(2,), seed=1))

    assert np.array_equal(first, again)
    assert np.abs(first.astype(int) - other).mean() > 10
    # From a given image, one iteration stays near it, far from the photo.
    start = np.full_like(photo, 200)
    near = painter.render(photo, painting, tiny(init="image", iterations=(1,)), init_image=start)
    assert np.abs(near.astype(int) - 200).mean() < np.abs(near.astype(int) - photo).mean()
    with pytest.raises(ValueError, match="init_image"):
        painter.render(photo, painting, tiny(init="image"))


@pytest.mark.slow
def test_luminance_transfer_keeps_the_photos_chroma(painter: StyleTransfer) -> None:
    photo, painting = draw_photo(), draw_painting()

    picture = painter.render(photo, painting, tiny(colours="luminance"))
    plain = painter.render(photo, painting, tiny())

    chroma = lambda image: rgb_to_yiq(image)[..., 1:]  # noqa: E731
    photo_chroma = chroma(resize_to_longest(photo, 64))
    # Chroma kept up to the rounding to 0..255 (and clipping of the brightest colours)...
    assert np.abs(chroma(picture) - photo_chroma).mean() < 1.5
    # ...where the ordinary render takes the painting's blues and yellows.
    assert np.abs(chroma(plain) - photo_chroma).mean() > 10
    # The luminance did change: it is painted.
    assert np.abs(rgb_to_yiq(picture)[..., 0] - rgb_to_yiq(resize_to_longest(photo, 64))[..., 0]).mean() > 3


@pytest.mark.slow
def test_blend_weights_move_the_gram_matrices_proportionally(painter: StyleTransfer) -> None:
    swirls, stripes = draw_painting(), draw_stripes()
    settings = tiny(feature_units=False)

    def targets(weight: float) -> list[np.ndarray]:
        blend = replace(settings, style_blend=(weight, 1 - weight))
        return painter.style_targets([swirls, stripes], blend)

    only_stripes, only_swirls = targets(0.0), targets(1.0)
    for weight in (0.25, 0.5, 0.8):
        for mixed, a, b in zip(targets(weight), only_swirls, only_stripes):
            np.testing.assert_allclose(mixed, weight * a + (1 - weight) * b, rtol=1e-4, atol=1e-6)
    # Weights need not sum to 1, and one painting at weight 1 is that painting alone.
    for mixed, alone in zip(
        painter.style_targets([swirls, stripes], replace(settings, style_blend=(3, 1))),
        painter.style_targets([swirls], settings),
    ):
        assert not np.allclose(mixed, alone)
    blend_one = painter.render(draw_photo(), [swirls, stripes], tiny(iterations=(3,), style_blend=(1, 0)))
    alone = painter.render(draw_photo(), swirls, tiny(iterations=(3,)))
    assert np.array_equal(blend_one, alone)
    with pytest.raises(ValueError, match="style_blend gives 2 weights for 1 paintings"):
        painter.render(draw_photo(), [swirls], tiny(style_blend=(1, 1)))


@pytest.mark.slow
def test_style_targets_with_colours_taken_from_the_photo_are_the_photos(painter: StyleTransfer) -> None:
    swirls, photo = draw_painting(), draw_photo()
    settings = tiny(feature_units=False, colours="histogram")

    with pytest.raises(ValueError, match='with colours "histogram" the targets depend on the photo'):
        painter.style_targets(swirls, settings)
    matched = painter.style_targets(swirls, settings, content=photo)
    direct = painter.style_targets(match_colour_histogram(swirls, resize_for_render(photo, settings.size)),
                                   replace(settings, colours="painting"))
    for a, b in zip(matched, direct):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_picture_without_faces_renders_exactly_as_with_faces_off(painter: StyleTransfer) -> None:
    photo, painting = draw_photo(), draw_painting()

    auto = painter.render(photo, painting, tiny(iterations=(3,), faces="auto"))
    off = painter.render(photo, painting, tiny(iterations=(3,), faces="off"))

    assert np.array_equal(auto, off)


@pytest.mark.slow
def test_a_broken_face_detector_paints_without_face_protection(
    painter: StyleTransfer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:  # its package or weights damaged: not the photo's fault, not worth a failed job
        calls = 0

        def detect(self, image: np.ndarray) -> list[Any]:
            Broken.calls += 1
            raise WeightsError("cannot load the face detector's weights")

    monkeypatch.setattr(painter, "_detector", Broken())
    monkeypatch.setattr(painter, "_faces_broken", False)
    photo, painting = draw_photo(), draw_painting()

    auto = painter.render(photo, painting, tiny(iterations=(3,), faces="auto"))
    again = painter.render(photo, painting, tiny(iterations=(3,), faces="auto"))
    off = painter.render(photo, painting, tiny(iterations=(3,), faces="off"))

    assert np.array_equal(auto, off) and np.array_equal(again, off)
    assert caplog.text.count("the face detector failed") == 1 and Broken.calls == 1  # said, and tried, once


@pytest.mark.slow
def test_a_render_is_deterministic_and_a_raising_progress_stops_it(painter: StyleTransfer) -> None:
    photo, painting = draw_photo(), draw_painting()
    settings = tiny(size=32, iterations=(4,))

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


JAX_SCRIPT = """
import json, sys
import numpy as np
from model.render import StyleTransfer
from tests.integration.test_model_render import draw_painting, draw_photo, resize, tiny
painter = StyleTransfer.bundled()
settings = tiny(size=32, iterations=(4,))
picture = painter.render(draw_photo(), draw_painting(), settings)
losses = [painter.loss(image, draw_photo(), draw_painting(), settings)
          for image in (picture, resize(draw_photo()))]
json.dump({"picture": picture.tolist(), "losses": losses}, sys.stdout)
"""


def resize(photo: np.ndarray) -> np.ndarray:
    return resize_to_longest(photo, 32)


@pytest.mark.slow
def test_the_jax_backend_gives_the_same_losses_and_picture(painter: StyleTransfer) -> None:
    pytest.importorskip("jax")
    # A fresh interpreter: Keras picks its backend once, at import.
    env = dict(os.environ, KERAS_BACKEND="jax")
    result = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=pathlib.Path(__file__).parents[2],
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    on_jax = json.loads(result.stdout)

    settings = tiny(size=32, iterations=(4,))
    picture = painter.render(draw_photo(), draw_painting(), settings)
    losses = [painter.loss(image, draw_photo(), draw_painting(), settings) for image in (picture, resize(draw_photo()))]

    # The same loss function: equal to float32 rounding on the same pictures.
    np.testing.assert_allclose(on_jax["losses"], losses, rtol=1e-4)
    # Float32 sums in another order: the same picture up to rounding, not bit for bit.
    assert picture.shape == (24, 32, 3)
    assert np.abs(np.array(on_jax["picture"]) - picture).mean() < 1.0


CACHE_SCRIPT = """
import sys
import jax
from model.backend import COMPILED_PROGRAMS_MAX_BYTES, keep_compiled_programs
assert keep_compiled_programs(sys.argv[1])
assert jax.config.jax_compilation_cache_max_size == COMPILED_PROGRAMS_MAX_BYTES  # bounded, least used out first
from model.render import StyleTransfer
from tests.integration.test_model_render import draw_painting, draw_photo, tiny
StyleTransfer.bundled().render(draw_photo(), draw_painting(), tiny(size=32, scales=(0.5, 1.0), iterations=(2, 2)))
"""


@pytest.mark.slow
def test_a_restarted_renderer_reuses_its_compiled_programs_on_jax(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax")
    kept = []  # each program file and when it was written, after each process
    for _ in range(2):  # two processes, one after the other: a bot and the same bot restarted
        result = subprocess.run(
            [sys.executable, "-c", CACHE_SCRIPT, str(tmp_path / "compiled")],
            capture_output=True, text=True, env=env, cwd=pathlib.Path(__file__).parents[2], timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        # The programs, not the "-atime" files a bounded cache keeps of when each was last used.
        kept.append({path.name: path.stat().st_mtime_ns for path in (tmp_path / "compiled").iterdir()
                     if not path.name.endswith("-atime")})
    assert len(kept[0]) > 5  # the loss, the forward pass and the optimiser's steps, at two sizes
    # Every program the restarted one needed was found kept: none compiled and written again.
    assert kept[1] == kept[0]


def test_a_folder_for_compiled_programs_that_cannot_be_made_is_only_warned_of(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("jax")
    (tmp_path / "a-file").write_text("not a folder")
    script = (
        "import logging, sys\n"
        "logging.basicConfig()\n"
        "from model.backend import keep_compiled_programs\n"
        "print(keep_compiled_programs(sys.argv[1]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "a-file" / "compiled")],
        capture_output=True, text=True, env=dict(os.environ, KERAS_BACKEND="jax"),
        cwd=pathlib.Path(__file__).parents[2], timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1] == "False"
    assert "compiled programs are not kept" in result.stderr


def test_tensorflow_keeps_compiled_programs_in_a_folder_per_version(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tensorflow as tf

    from model.backend import keep_compiled_programs

    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_min_cluster_size=2")
    assert keep_compiled_programs(tmp_path / "compiled") is True
    folder = tmp_path / "compiled" / f"tensorflow-{tf.__version__}"
    assert folder.is_dir()
    # Added to the flags already there, not in their place.
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_min_cluster_size=2 --tf_xla_persistent_cache_directory={folder}"


def test_a_cache_folder_set_by_whoever_runs_the_bot_stands(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model.backend import keep_compiled_programs

    theirs = f"--tf_xla_persistent_cache_directory={tmp_path / 'theirs'}"
    monkeypatch.setenv("TF_XLA_FLAGS", theirs)
    assert keep_compiled_programs(tmp_path / "compiled") is True
    assert os.environ["TF_XLA_FLAGS"] == theirs
    assert not (tmp_path / "compiled").exists()


def test_a_tensorflow_cache_folder_that_cannot_be_made_is_only_warned_of(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from model.backend import keep_compiled_programs

    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    (tmp_path / "a-file").write_text("not a folder")
    assert keep_compiled_programs(tmp_path / "a-file" / "compiled") is False
    assert "compiled programs are not kept" in caplog.text
    assert "TF_XLA_FLAGS" not in os.environ


def test_compiled_programs_are_pruned_oldest_written_first(tmp_path: pathlib.Path) -> None:
    from model.backend import prune_compiled_programs

    (tmp_path / "old-version").mkdir()
    for age, name in enumerate(["newest", "middle", "old-version/oldest"]):
        path = tmp_path / name
        path.write_bytes(b"x" * 100)
        os.utime(path, ns=(10**18 - age * 10**9, 10**18 - age * 10**9))
    assert prune_compiled_programs(tmp_path, 250) == [tmp_path / "old-version" / "oldest"]
    assert prune_compiled_programs(tmp_path, 200) == []
    assert prune_compiled_programs(tmp_path, 150) == [tmp_path / "middle"]
    assert [path.name for path in tmp_path.rglob("*") if path.is_file()] == ["newest"]


TENSORFLOW_CACHE_SCRIPT = """
import sys
from model.backend import keep_compiled_programs
assert keep_compiled_programs(sys.argv[1])
from model.render import StyleTransfer
from tests.integration.test_model_render import draw_painting, draw_photo, tiny
StyleTransfer.bundled().render(draw_photo(), draw_painting(), tiny(size=64, scales=(0.5, 1.0), iterations=(2, 2)))
"""


@pytest.mark.slow
def test_a_restarted_renderer_reuses_its_compiled_loss_on_tensorflow(tmp_path: pathlib.Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "TF_XLA_FLAGS"}
    # XLA's persistent cache says where it loads a program from at verbosity 3.
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="0", TF_CPP_VMODULE="device_executable_persistor=3")
    kept, loaded = [], []  # after each process: each program file and when it was written; programs loaded
    for _ in range(2):  # two processes, one after the other: a bot and the same bot restarted
        result = subprocess.run(
            [sys.executable, "-c", TENSORFLOW_CACHE_SCRIPT, str(tmp_path / "compiled")],
            capture_output=True, text=True, env=env, cwd=pathlib.Path(__file__).parents[2], timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        kept.append({path.name: path.stat().st_mtime_ns for path in (tmp_path / "compiled").rglob("*.pb")})
        loaded.append(result.stderr.count("Loading cached entry for:"))
    assert len(kept[0]) == 2  # the loss at each stage's size
    assert loaded == [0, 2]
    # Found kept, not compiled and written again.
    assert kept[1] == kept[0]


def test_settings_for_another_network_are_refused(painter: StyleTransfer) -> None:
    with pytest.raises(ValueError, match="these settings are for vgg19, this renderer runs vgg16"):
        painter.render(draw_photo(), draw_painting(), RenderSettings.neural_style())


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


@pytest.mark.slow
def test_faces_found_are_painted_closer_to_the_photo(painter: StyleTransfer) -> None:
    skimage_data = pytest.importorskip("skimage.data")
    portrait = resize_to_longest(skimage_data.astronaut(), 128)  # NASA, public domain
    [face] = painter.find_faces(portrait)
    x, y, width, height = (round(v) for v in face.box)
    # From the photo's own colours, so that what moves the face is the painting alone.
    settings = tiny(size=128, iterations=(12,), start_colours="photo")

    protected = painter.render(portrait, draw_painting(), replace(settings, faces="auto"))
    plain = painter.render(portrait, draw_painting(), replace(settings, faces="off"))

    def change_in_face(picture: np.ndarray) -> float:
        box = (slice(max(y, 0), y + height), slice(max(x, 0), x + width))
        return float(np.abs(picture[box].astype(int) - portrait[box]).mean())

    assert change_in_face(protected) < 0.8 * change_in_face(plain)


def test_faces_share_the_pictures_palette_and_are_painted_apart_deeper(painter: StyleTransfer) -> None:
    """At blocks 1 and 2 (the palette and brushwork) a face is part of the picture's one Gram
    matrix, as with faces off; deeper, it is painted apart, with less style."""
    photo, painting = draw_photo(), draw_painting()
    face = Face(box=(20.0, 10.0, 24.0, 28.0), confidence=1.0)  # no landmarks: a face protected whole
    picture = preprocess(np.asarray(painter.render(photo, painting, tiny(iterations=(2,)))))[np.newaxis]

    def style_only(layers: tuple[str, ...], faces: bool) -> float:
        settings = tiny(style_layers=layers, content_weight=0.0, tv_weight=0.0)
        inputs = painter._inputs(photo, painting, settings)
        prepared, paintings = inputs.at(settings.size, settings.style_scale)
        weights = face_weights(prepared.shape[1:3], [face]) if faces else None
        loss = painter._objective(settings).loss_and_gradient(prepared, paintings, inputs.blend, settings, weights)
        return float(loss(picture)[0])

    shallow, deep = ("block1_conv1", "block2_conv1"), ("block4_conv1",)
    assert style_only(shallow, faces=True) == pytest.approx(style_only(shallow, faces=False), rel=1e-5)
    assert style_only(deep, faces=True) != pytest.approx(style_only(deep, faces=False), rel=1e-2)


@pytest.mark.slow
def test_l_bfgs_is_given_shorter_steps_on_small_faces_at_every_stage(
    painter: StyleTransfer, monkeypatch: pytest.MonkeyPatch
) -> None:
    skimage_data = pytest.importorskip("skimage.data")
    portrait = resize_to_longest(skimage_data.astronaut(), 128)  # NASA, public domain
    [face] = painter.find_faces(portrait)
    assert feature_scale(face) < SMALL_FACE  # her eyes a few pixels apart at 128 px: a small face
    given: list[np.ndarray | None] = []
    real_lbfgs = render_module.lbfgs

    def recording_lbfgs(*args: Any, preconditioner: np.ndarray | None = None, **kwargs: Any) -> Optimised:
        given.append(preconditioner)
        return real_lbfgs(*args, preconditioner=preconditioner, **kwargs)

    monkeypatch.setattr(render_module, "lbfgs", recording_lbfgs)
    settings = tiny(size=128, scales=(0.5, 1.0), iterations=(1, 1), faces="auto")
    painter.render(portrait, draw_painting(), settings)
    painter.render(portrait, draw_painting(), replace(settings, faces="off"))

    assert len(given) == 4 and given[2] is None and given[3] is None  # faces off: plain steps
    for preconditioner, size in zip(given[:2], (64, 128)):
        assert preconditioner is not None and preconditioner.shape == (1, size, size, 1)
        eye_x, eye_y = (int(v * size / 128) for v in face.landmarks["left_eye"])
        on_eye = preconditioner[0, eye_y, eye_x, 0]
        assert on_eye <= 6.0**-SMALL_FACE_DAMPING + 1e-6  # shorter on its eye: its content weighs 6 or more
        assert preconditioner[0, 0, 0, 0] == 1.0 and preconditioner.max() == 1.0  # as usual away from it


def test_precision_auto_is_float32_without_a_gpu(painter: StyleTransfer) -> None:
    if on_gpu() or cpu_has_bfloat16():
        pytest.skip("Keras runs on a GPU, or a CPU with bfloat16 instructions, here: auto is bfloat16")
    photo, painting = draw_photo(), draw_painting()
    auto = painter.render(photo, painting, tiny(iterations=(3,), precision="auto"))
    assert np.array_equal(auto, painter.render(photo, painting, tiny(iterations=(3,), precision="float32")))


def test_precision_auto_on_a_cpu_is_decided_by_its_bfloat16_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    if on_gpu():
        pytest.skip("Keras runs on a GPU here: auto is bfloat16 whatever the CPU")
    auto = RenderSettings(precision="auto")
    monkeypatch.setattr(render_module, "cpu_has_bfloat16", lambda: True)  # AVX-512 BF16 or AMX
    assert render_module.computes_in(auto) == "bfloat16"
    assert render_module.computes_in(replace(auto, precision="float32")) == "float32"
    monkeypatch.setattr(render_module, "cpu_has_bfloat16", lambda: False)  # AVX2 only: emulated
    assert render_module.computes_in(auto) == "float32"
    assert render_module.computes_in(replace(auto, precision="bfloat16")) == "bfloat16"


@pytest.mark.slow
def test_a_bfloat16_render_is_as_good_by_the_float32_loss(painter: StyleTransfer) -> None:
    photo, painting = draw_photo(), draw_painting()
    settings = tiny(precision="float32")
    start = painter.loss(photo, photo, painting, settings)

    in_float32 = painter.render(photo, painting, settings)
    in_bfloat16 = painter.render(photo, painting, replace(settings, precision="bfloat16"))
    full = painter.loss(in_float32, photo, painting, settings)
    half = painter.loss(in_bfloat16, photo, painting, settings)

    assert not np.array_equal(in_bfloat16, in_float32)  # it did compute in bfloat16
    assert half < 0.5 * start  # it painted
    # No worse by the float32 loss (its two paths part after a few steps: 0.2-3% apart, either way).
    assert half <= full * 1.02


@pytest.mark.slow
def test_on_a_cpu_with_bfloat16_instructions_its_loss_is_a_graph_per_size_with_onednns_pooling(
    weights: dict[str, tuple[np.ndarray, np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    if keras.backend.backend() != "tensorflow" or on_gpu():
        pytest.skip("bfloat16 runs as a graph on TensorFlow on a CPU only")
    # Where the CPU has no bfloat16 instructions the graph runs on Eigen's kernels: slowly, and
    # the same.
    monkeypatch.setattr(render_module, "cpu_has_bfloat16", lambda: True)
    assert render_module.compiled_by_xla("bfloat16") is False
    assert render_module.compiled_by_xla("float32") is True
    painter = StyleTransfer(weights)  # its own: a fresh compiled loss
    photo, painting = draw_photo(), draw_painting()
    settings = tiny(precision="bfloat16", iterations=(3,))

    def traces_after(height: int, width: int) -> int:
        picture = painter.render(draw_photo(height, width), painting, settings)
        assert picture.shape == (height, width, 3)
        (objective,) = painter._objectives.values()
        return int(objective.value_and_grad.experimental_get_tracing_count())

    # A graph for each size, none with its size left open (oneDNN's kernels are slower so): a
    # third height is traced too (a trace relaxed to any height, as XLA's is, would take it);
    # a size met again is not traced again.
    assert [traces_after(48, 64), traces_after(40, 64), traces_after(56, 64), traces_after(48, 64)] == [1, 2, 3, 3]
    (objective,) = painter._objectives.values()
    assert {layer.compute_dtype for layer in objective.extractor.layers[1:]} == {"bfloat16"}
    pools = [layer for layer in objective.extractor.layers if layer.name.endswith("_pool")]
    assert pools and not any(pool.for_xla for pool in pools)
    # The same loss as float32's, to bfloat16's rounding.
    picture = painter.render(photo, painting, settings)
    half = painter.loss(picture, photo, painting, settings)
    assert half == pytest.approx(painter.loss(picture, photo, painting, replace(settings, precision="float32")), rel=0.01)


def test_from_256_px_on_the_short_side_is_painted_rounded_to_16_px(painter: StyleTransfer) -> None:
    photo = draw_photo(200, 300)  # 256 x 170.7: rounded to 176 (11 x 16)
    picture = painter.render(photo, draw_painting(), tiny(size=256, iterations=(1,)))
    assert picture.shape == (176, 256, 3)
    # Below 256 px the aspect ratio is kept to the pixel.
    assert painter.render(photo, draw_painting(), tiny(size=90, iterations=(1,))).shape == (60, 90, 3)


def test_on_tensorflow_the_loss_is_traced_for_any_size_once_sizes_have_varied(
    weights: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    if keras.backend.backend() != "tensorflow":
        pytest.skip("JAX traces each size: jax.jit has no shape-relaxed trace")
    painter = StyleTransfer(weights)  # its own: a fresh compiled loss

    def traces_after(height: int, width: int) -> int:
        picture = painter.render(draw_photo(height, width), draw_painting(), tiny(iterations=(1,)))
        assert picture.shape == (height, width, 3)
        (objective,) = painter._objectives.values()
        return int(objective.value_and_grad.experimental_get_tracing_count())

    # The first size; then its height relaxed (the width was the same); then both.
    assert [traces_after(48, 64), traces_after(40, 64), traces_after(64, 36)] == [1, 2, 3]
    # From then on a new picture size only compiles (XLA): it is not traced again.
    assert traces_after(64, 52) == traces_after(30, 64) == 3
