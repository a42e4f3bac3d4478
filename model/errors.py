"""The root exception of ``model`` and what can go wrong rendering a picture."""

from __future__ import annotations


class ModelError(Exception):
    """Something the renderer cannot do; the message is written for a person to read."""


class ImageError(ModelError):
    """The bytes, file or array given is not an image the renderer can read."""


class WeightsError(ModelError):
    """The network weights are missing, unreadable or not the shapes VGG16 needs."""
