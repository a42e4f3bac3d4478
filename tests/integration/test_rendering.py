"""What a user asks for reaches the renderer, and `forger render` reaches every control."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bot.app import Forger
from bot.cli import main
from tests.factories import make_config, on_sandbox
from bot.options import RenderOptions, Strength
from bot.rendering import ProgressFn, QuickRenderer, settings_for
from bot.x.sandbox import CREDENTIALS_ENV, SandboxX
from model.settings import RenderSettings

ROOT = Path(__file__).resolve().parents[2]


def test_a_users_options_become_render_settings() -> None:
    configured = RenderSettings(strength=2.0)

    assert settings_for(configured, None) == configured
    assert settings_for(configured, RenderOptions()) == configured
    high = settings_for(configured, RenderOptions(strength=Strength.HIGH))
    low = settings_for(configured, RenderOptions(strength=Strength.LOW))
    assert high.strength == 6.0 and low.strength == pytest.approx(2 / 3)
    kept = settings_for(configured, RenderOptions(keep_colours=True, protect_faces=False))
    assert (kept.colours, kept.faces) == ("luminance", "off")
    assert (configured.colours, configured.faces) == ("painting", "auto")


class RecordingRenderer(QuickRenderer):
    """The quick renderer, noting the options each render was given."""

    def __init__(self) -> None:
        super().__init__(size=64)
        self.options: list[RenderOptions | None] = []

    def render(
        self, content: bytes, style: bytes, progress: ProgressFn | None = None, *, options: RenderOptions | None = None
    ) -> bytes:
        self.options.append(options)
        return super().render(content, style, progress, options=options)


@pytest.fixture
def x() -> Iterator[SandboxX]:
    with SandboxX(bot_username="forgerbot") as sandbox:
        yield sandbox


def test_the_worker_passes_a_jobs_options_to_the_renderer(x: SandboxX, tmp_path: Path, samples: Path, paintings: Path) -> None:
    config = make_config(tmp_path, x=on_sandbox(x))
    renderer = RecordingRenderer()
    forger = Forger.create(config, CREDENTIALS_ENV, renderer=renderer, upgrade=True)
    try:
        photo, painting = (samples / "coffee.jpg").read_bytes(), (paintings / "starry_night.jpg").read_bytes()
        x.post("alice", "@forgerbot strength high, keep colours, faces off", images=[photo, painting])
        forger.poll()
        assert forger.work() == 1
    finally:
        forger.close()

    assert renderer.options == [RenderOptions(Strength.HIGH, keep_colours=True, protect_faces=False)]


def _image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> Path:
    array = np.zeros((size[1], size[0], 3), np.uint8) + np.array(colour, np.uint8)
    array[::4] = 255 - array[::4]  # some texture
    Image.fromarray(array).save(path)
    return path


@pytest.mark.slow
def test_forger_render_reaches_every_control(tmp_path: Path) -> None:
    photo = _image(tmp_path / "photo.png", (60, 120, 200))
    swirls = _image(tmp_path / "a.png", (200, 180, 40))
    stripes = _image(tmp_path / "b.png", (30, 30, 30))
    out = tmp_path / "out.png"
    flags = [
        "--size", "32", "--scales", "0.5,1", "--iterations", "2,2", "--early-stop", "0",
        "--optimiser", "adam", "--learning-rate", "0.01", "--init", "noise", "--seed", "3",
        "--content-weight", "2", "--style-weight", "1e3", "--tv-weight", "0", "--strength", "high",
        "--content-layers", "block3_conv2", "--style-layers", "block1_conv1,block2_conv1",
        "--layer-weights", "1,0.5", "--style-scale", "0.8", "--blend", "0.7,0.3",
        "--colours", "luminance", "--faces", "off", "--precision", "bfloat16",
    ]

    result = CliRunner().invoke(
        main, ["--config", str(ROOT / "config.yaml"), "render", str(photo), str(swirls), str(stripes), "-o", str(out), *flags]
    )

    assert result.exit_code == 0, result.output
    with Image.open(out) as painted:
        assert painted.size == (32, 24)
    assert f"wrote {out} (32×24)" in result.output


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--scales", "0.5,1", "--iterations", "5"], "iterations must give one number per scale"),
        (["--iterations", "a,b"], "'a,b' is not a comma-separated list of whole numbers"),
        (["--strength", "extreme"], "strength must be low, normal, high or a positive number"),
        (["--style-layers", "relu1_1"], "style_layers has unknown layer 'relu1_1'"),
        (["--weights", "/nowhere.h5"], "--weights needs --weights-sha256"),
        (["--init", "image"], "--init image needs --init-image FILE"),
        (["--blend", "1,2"], "--blend gives 2 weights for 1 painting"),
        (["-o", "painted.gif"], "cannot tell the format of painted.gif: name it .png, .jpg or .jpeg"),
        (["-o", "/no/such/folder/painted.jpg"], "there is no folder /no/such/folder"),
        (["--weights-sha256", "ab" * 32], "--weights-sha256 checks the file given by --weights"),
        (["--weights", "/w.h5", "--weights-sha256", "deadbeef"], "must be 64 hexadecimal digits"),
        (["--init", "noise", "--init-image", "{photo}"], "--init-image is where --init image starts"),
    ],
)
def test_forger_render_refuses_bad_flags_before_painting(tmp_path: Path, flags: list[str], message: str) -> None:
    photo = _image(tmp_path / "photo.png", (60, 120, 200))

    result = CliRunner().invoke(
        main, ["--config", str(ROOT / "config.yaml"), "render", str(photo), str(photo), "-o", str(tmp_path / "o.png"),
               *(flag.format(photo=photo) for flag in flags)]
    )

    assert result.exit_code == 2, result.output
    assert message in result.output
