"""RenderSettings refuses bad values when made, with a message that names the field."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from model.settings import SHALLOW_WEIGHT, STRENGTHS, Progress, RenderSettings, parse_strength
from model.weights import VGG16_LAYERS, VGG19_LAYERS


def test_the_defaults_are_valid_and_use_vgg16_layers() -> None:
    settings = RenderSettings()

    assert settings.size == 512
    assert settings.scales[-1] == 1.0 and len(settings.iterations) == len(settings.scales)
    assert settings.total_iterations == sum(settings.iterations) > 0
    assert set(settings.content_layers + settings.style_layers) <= set(VGG16_LAYERS)
    # Blocks 1 and 2 (palette and brushwork) weigh SHALLOW_WEIGHT, the deeper ones 1.
    assert settings.layer_weights == (SHALLOW_WEIGHT, SHALLOW_WEIGHT, 1.0, 1.0, 1.0)
    assert RenderSettings(style_layers=("block2_conv2", "block3_conv3")).layer_weights == (SHALLOW_WEIGHT, 1.0)
    assert RenderSettings(style_layer_weights=(1, 2, 3, 4, 5)).layer_weights == (1, 2, 3, 4, 5)


def test_coarse_to_fine_stages_are_fractions_of_the_size() -> None:
    settings = RenderSettings(size=1024, scales=(0.25, 0.5, 1.0), iterations=(50, 20, 5))

    assert settings.stage_sizes() == (256, 512, 1024)
    assert RenderSettings(size=40, scales=(0.1, 1.0), iterations=(5, 5)).stage_sizes() == (16, 40)
    assert RenderSettings(size=8).stage_sizes() == (8, 8)  # a coarse stage is never larger than the picture


def test_one_scale_takes_a_plain_number_of_iterations() -> None:
    settings = RenderSettings(scales=(1.0,), iterations=100)  # type: ignore[arg-type]

    assert settings.iterations == (100,) and settings.total_iterations == 100


def test_neural_styles_defaults_are_its_published_ones() -> None:
    settings = RenderSettings.neural_style()

    assert (settings.content_weight, settings.style_weight, settings.tv_weight) == (5.0, 100.0, 1e-3)
    assert settings.network == "vgg19" and not settings.feature_units
    assert settings.iterations == (1000,) and settings.init == "noise"
    assert settings.layer_weights == (1.0,) * len(settings.style_layers)  # its layers weigh alike
    assert set(settings.style_layers) <= set(VGG19_LAYERS)
    # VGG19 has layers VGG16 lacks, and the settings check against the network asked for.
    assert RenderSettings.neural_style(style_layers=("block3_conv4",)).style_layers == ("block3_conv4",)
    with pytest.raises(ValueError, match="style_layers has unknown layer 'block3_conv4'; vgg16 has"):
        RenderSettings(style_layers=("block3_conv4",))


@pytest.mark.parametrize(
    ("said", "strength"), [("low", STRENGTHS["low"]), ("HIGH", 3.0), ("normal", 1.0), ("2.5", 2.5), (0.5, 0.5)]
)
def test_strength_is_a_word_or_a_number(said: str | float, strength: float) -> None:
    assert parse_strength(said) == strength


@pytest.mark.parametrize("said", ["extreme", "0", "-1", "nan", ""])
def test_a_strength_that_is_not_one_is_refused(said: str) -> None:
    with pytest.raises(ValueError, match="strength must be low, normal, high or a positive number"):
        parse_strength(said)


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
        ("size", 10**6, "size must be at most 8192 px, got: 1000000"),
        ("iterations", (30, 0), "iterations at full size must be at least 1"),
        ("iterations", (-5, 10), "iterations must be at least 0, got: -5"),
        ("iterations", (10,), "iterations must give one number per scale"),
        ("scales", (1.0, 0.5), "scales must increase and end at 1"),
        ("scales", (0.5, 0.8), "scales must increase and end at 1"),
        ("early_stop", 1.5, "early_stop must be between 0 and 1"),
        ("optimiser", "sgd", "optimiser must be one of lbfgs, adam, got: 'sgd'"),
        ("init", "random", "init must be one of content, noise, image"),
        ("network", "resnet", "network must be one of vgg16, vgg19"),
        ("colours", "sepia", "colours must be one of painting, luminance, histogram"),
        ("faces", "on", "faces must be one of auto, off"),
        ("precision", "float16", "precision must be one of auto, float32, bfloat16"),
        ("learning_rate", 0, "learning_rate must be positive"),
        ("strength", -1, "strength must be positive"),
        ("style_layer_weights", (1.0, 2.0), "style_layer_weights must give one weight per style layer"),
        ("style_layer_weights", (1, 1, 1, 1, -1), "must not be negative"),
        ("style_blend", (0, 0), "style_blend must not be all 0"),
        ("seed", -1, "seed must be at least 0, got: -1"),
        ("content_weight", -1.0, "content_weight must not be negative, got: -1.0"),
        ("style_weight", math.nan, "style_weight must be a number, got: nan"),
        ("tv_weight", "1e-3", "tv_weight must be a number, got: '1e-3'"),
        ("style_scale", 0.0, "style_scale must be positive, got: 0.0"),
        ("style_scale", math.inf, "style_scale must be a number, got: inf"),
        ("style_scale", 1e4, "style_scale must be at most 4, got: 10000"),
        ("content_layers", (), r"content_layers must name at least one layer, got: \(\)"),
        ("content_layers", "block4_conv2", "content_layers must be a tuple of vgg16 layer names"),
        ("style_layers", ("block1_conv1", "block9_conv1"), "style_layers has unknown layer 'block9_conv1'"),
        ("style_layers", ("relu1_1",), "style_layers has unknown layer 'relu1_1'; vgg16 has: block1_conv1"),
        ("style_layers", ("block1_conv1", "block1_conv1"), "style_layers names a layer twice"),
    ],
)
def test_bad_values_are_refused_by_name(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RenderSettings(**{field: value})


def test_a_render_needs_content_or_style() -> None:
    for no_style in ({"style_weight": 0}, {"style_layer_weights": (0, 0, 0, 0, 0)}):
        with pytest.raises(ValueError, match=r"content_weight and the style \(style_weight, or every style_layer_weight\) cannot both be 0"):
            RenderSettings(content_weight=0, **no_style)  # type: ignore[arg-type]


def test_zero_weights_are_allowed_one_at_a_time() -> None:
    assert RenderSettings(tv_weight=0, content_weight=0).style_weight > 0


def test_progress_is_a_plain_record() -> None:
    progress = Progress(iteration=3, total=10, loss=1.5, elapsed_s=0.25, size=256)

    assert (progress.iteration, progress.total, progress.loss, progress.elapsed_s) == (3, 10, 1.5, 0.25)
    assert progress.size == 256
