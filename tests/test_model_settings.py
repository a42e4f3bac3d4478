"""RenderSettings refuses bad values when made, with a message that names the field."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from model.settings import Progress, RenderSettings
from model.weights import VGG16_LAYERS


def test_the_defaults_are_valid_and_use_vgg16_layers() -> None:
    settings = RenderSettings()

    assert settings.size == 512
    assert settings.iterations > 0
    assert set(settings.content_layers + settings.style_layers) <= set(VGG16_LAYERS)


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RenderSettings().size = 1024  # type: ignore[misc]


def test_layer_lists_become_tuples() -> None:
    settings = RenderSettings(style_layers=["block1_conv1", "block2_conv1"])  # type: ignore[arg-type]

    assert settings.style_layers == ("block1_conv1", "block2_conv1")
    hash(settings)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("size", 0, "size must be positive, got: 0"),
        ("size", 512.0, "size must be a whole number, got: 512.0"),
        ("size", True, "size must be a whole number, got: True"),
        ("iterations", 0, "iterations must be positive, got: 0"),
        ("iterations", -5, "iterations must be positive, got: -5"),
        ("seed", -1, "seed must be at least 0, got: -1"),
        ("content_weight", -1.0, "content_weight must not be negative, got: -1.0"),
        ("style_weight", math.nan, "style_weight must be a number, got: nan"),
        ("tv_weight", "1e-3", "tv_weight must be a number, got: '1e-3'"),
        ("style_scale", 0.0, "style_scale must be positive, got: 0.0"),
        ("style_scale", math.inf, "style_scale must be a number, got: inf"),
        ("content_layers", (), r"content_layers must name at least one layer, got: \(\)"),
        ("content_layers", "block4_conv2", "content_layers must be a tuple of VGG16 layer names"),
        ("style_layers", ("block1_conv1", "block9_conv1"), "style_layers has unknown layer 'block9_conv1'"),
        ("style_layers", ("relu1_1",), "style_layers has unknown layer 'relu1_1'; VGG16 has: block1_conv1"),
        ("style_layers", ("block1_conv1", "block1_conv1"), "style_layers names a layer twice"),
    ],
)
def test_bad_values_are_refused_by_name(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RenderSettings(**{field: value})


def test_a_render_needs_content_or_style() -> None:
    with pytest.raises(ValueError, match="content_weight and style_weight cannot both be 0"):
        RenderSettings(content_weight=0, style_weight=0)


def test_zero_weights_are_allowed_one_at_a_time() -> None:
    assert RenderSettings(tv_weight=0, content_weight=0).style_weight > 0


def test_progress_is_a_plain_record() -> None:
    progress = Progress(iteration=3, total=10, loss=1.5, elapsed_s=0.25)

    assert (progress.iteration, progress.total, progress.loss, progress.elapsed_s) == (3, 10, 1.5, 0.25)
