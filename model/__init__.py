"""Forger's renderer: Gatys et al.'s neural style as pure functions of images and weights.

Importing this package is light (no TensorFlow): it offers the images, settings, weights and
errors. The renderer itself, which loads Keras, is ``model.render.StyleTransfer``::

    from model import RenderSettings, load_image
    from model.render import StyleTransfer

    painter = StyleTransfer.bundled()
    picture = painter.render(load_image("photo.jpg"), load_image("painting.jpg"), RenderSettings())
"""

from __future__ import annotations

from model.errors import ImageError, ModelError, WeightsError
from model.images import (
    decode_image,
    encode_image,
    load_image,
    resize_for_render,
    resize_to_longest,
    save_image,
)
from model.settings import Progress, RenderSettings
from model.weights import VGG16_LAYERS, bundled_vgg16_path, load_vgg16

__all__ = [
    "VGG16_LAYERS",
    "ImageError",
    "ModelError",
    "Progress",
    "RenderSettings",
    "WeightsError",
    "bundled_vgg16_path",
    "decode_image",
    "encode_image",
    "load_image",
    "load_vgg16",
    "resize_for_render",
    "resize_to_longest",
    "save_image",
]
