"""`forger demo` needs nothing beside the project: photos in bot/samples, the painting in the gallery."""

from __future__ import annotations

import fnmatch
import shutil
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from bot.cli import main
from bot.x.demo import NEEDED, SAMPLES, demo_images
from bot.errors import ForgerError
from bot.gallery import BUNDLED

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_takes_its_images_from_the_package() -> None:
    paths = demo_images(None)

    assert paths == {
        "coffee.jpg": SAMPLES / "coffee.jpg",
        "starry_night.jpg": BUNDLED / "starry_night.jpg",
        "chelsea.jpg": SAMPLES / "chelsea.jpg",
    }
    assert all(path.is_file() for path in paths.values())


def test_the_sample_photos_are_small_jpegs_with_their_sources_and_in_the_package_data() -> None:
    shipped = sorted(path.name for path in SAMPLES.glob("*.jpg"))
    sources = (SAMPLES / "SOURCES.md").read_text()
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["bot"]

    assert shipped == ["chelsea.jpg", "coffee.jpg"]
    for name in shipped:
        assert f"| {name} |" in sources and "CC0" in sources
        assert (SAMPLES / name).stat().st_size < 300_000
        with Image.open(SAMPLES / name) as image:
            assert image.format == "JPEG" and min(image.size) >= 256
        assert any(fnmatch.fnmatch(f"samples/{name}", pattern) for pattern in patterns)
    assert any(fnmatch.fnmatch("samples/SOURCES.md", pattern) for pattern in patterns)


def test_images_from_another_folder_must_all_be_there(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "coffee.jpg", tmp_path)

    with pytest.raises(ForgerError, match=f"the demo needs starry_night.jpg, chelsea.jpg in {tmp_path} "):
        demo_images(tmp_path)

    for name, folder in NEEDED.items():
        shutil.copy(folder / name, tmp_path)
    assert demo_images(tmp_path) == {name: tmp_path / name for name in NEEDED}


def test_the_cli_names_the_missing_images_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(ROOT / "config.yaml"), "demo", "--images", str(tmp_path),
                                       "--out", str(tmp_path / "out"), "--quick"])

    assert result.exit_code == 1
    assert f"Error: the demo needs coffee.jpg, starry_night.jpg, chelsea.jpg in {tmp_path}" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("x_dialect", ["posts", "tweets"])
def test_the_quick_demo_answers_every_mention_from_the_shipped_images(tmp_path: Path, x_dialect: str) -> None:
    from rich.console import Console

    from bot.config import load_config
    from bot.x.demo import run_demo

    out = run_demo(load_config(ROOT / "config.yaml"), out=tmp_path / "out", images=None, size=64, iterations=None,
                   quick=True, console=Console(quiet=True), x_dialect=x_dialect)

    assert sorted(path.name for path in out.glob("reply-to-*")) == ["reply-to-alice-1.jpg", "reply-to-bob-1.jpg"]
