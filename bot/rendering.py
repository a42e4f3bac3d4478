"""Renderers as the bot sees them: encoded images in, an encoded image out, progress along the way.

``NeuralRenderer`` is the real one (model/, TensorFlow loaded on first use). ``QuickRenderer`` is
the fast stand-in that bot tests and dry runs use so they never load TensorFlow: it does a real,
cheap transformation (the painting's colour statistics moved onto the photo, Reinhard et al. 2001),
so its output depends on both inputs like a real render does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from bot.options import RenderOptions
from model.images import decode_image, encode_image, resize_to_longest
from model.settings import Progress, RenderSettings, parse_strength

if TYPE_CHECKING:
    from model.render import StyleTransfer

ProgressFn = Callable[[Progress], None]



class Renderer(Protocol):
    def render(
        self, content: bytes, style: bytes, progress: ProgressFn | None = None, *, options: RenderOptions | None = None
    ) -> bytes:
        """Paint ``content`` in the style of ``style``; both and the result are encoded images.

        ``options`` are the user's: strength, keep colours, faces off. Raises ``model.errors.ImageError`` when an input is not a
        usable image.
        """
        ...


def settings_for(settings: RenderSettings, options: RenderOptions | None) -> RenderSettings:
    """The configured ``settings`` with a user's ``options`` applied.

    Strength multiplies the configured strength (low a third, high three times); "keep colours"
    is luminance-only transfer; "faces off" stops the face protection; a size (asked on the web,
    within the operator's cap) replaces the configured one.
    """
    if options is None:
        return settings
    changes: dict[str, object] = {"strength": settings.strength * parse_strength(options.strength.value)}
    if options.keep_colours:
        changes["colours"] = "luminance"
    if not options.protect_faces:
        changes["faces"] = "off"
    if options.size is not None:
        changes["size"] = options.size
    return replace(settings, **changes)  # type: ignore[arg-type]


class NeuralRenderer:
    """Gatys et al. style transfer (``model.render``), its network loaded once on the first render."""

    def __init__(
        self,
        settings: RenderSettings,
        weights_path: str | None = None,
        weights_sha256: str | None = None,
        compile_cache: Path | None = None,
    ) -> None:
        """``compile_cache``: a folder where the compiled network is kept across restarts, on
        backends that can (JAX's programs, TensorFlow's XLA-compiled loss; see
        ``model.backend.keep_compiled_programs``)."""
        self.settings = settings
        self.weights_path = weights_path
        self.weights_sha256 = weights_sha256
        self.compile_cache = compile_cache
        self._transfer: StyleTransfer | None = None
        self._lock = threading.Lock()

    def _network(self) -> StyleTransfer:
        with self._lock:
            if self._transfer is None:
                from model.backend import keep_compiled_programs
                from model.render import StyleTransfer  # imports TensorFlow: only when needed

                if self.compile_cache is not None:
                    keep_compiled_programs(self.compile_cache)

                self._transfer = StyleTransfer.load(
                    self.settings.network, self.weights_path, self.weights_sha256
                )
            return self._transfer

    def render(
        self, content: bytes, style: bytes, progress: ProgressFn | None = None, *, options: RenderOptions | None = None
    ) -> bytes:
        settings = settings_for(self.settings, options)
        picture, painting = decode_image(content), decode_image(style)
        painted = self._network().render(picture, painting, settings, progress=progress)
        return encode_image(painted, format="JPEG", quality=92)


class QuickRenderer:
    """The painting's per-channel mean and spread moved onto the photo: instant, no TensorFlow."""

    def __init__(self, size: int = 256, steps: int = 4) -> None:
        self.size = size
        self.steps = steps

    def render(
        self, content: bytes, style: bytes, progress: ProgressFn | None = None, *, options: RenderOptions | None = None
    ) -> bytes:
        size = options.size if options is not None and options.size is not None else self.size
        picture = resize_to_longest(decode_image(content), size).astype(np.float64)  # (H, W, 3)
        painting = decode_image(style).astype(np.float64)
        mean_p, std_p = picture.mean(axis=(0, 1)), picture.std(axis=(0, 1)) + 1e-6
        mean_s, std_s = painting.mean(axis=(0, 1)), painting.std(axis=(0, 1))
        out = picture
        for step in range(1, self.steps + 1):
            t = step / self.steps  # move towards the painting's statistics in a few steps
            target_mean = (1 - t) * mean_p + t * mean_s
            target_std = (1 - t) * std_p + t * std_s
            out = (picture - mean_p) / std_p * target_std + target_mean
            if progress:
                progress(Progress(iteration=step, total=self.steps, loss=float(np.abs(out.mean((0, 1)) - mean_s).sum()), elapsed_s=0.0))
        return encode_image(np.clip(out, 0, 255).astype(np.uint8), format="JPEG", quality=90)
