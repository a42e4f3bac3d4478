"""Small JPEGs of the gallery's paintings for the page, made on the server once and kept."""

from __future__ import annotations

import functools
import io
from pathlib import Path

from PIL import Image, ImageOps

SIDE = 320  # the longest side, in pixels (twice what the page shows, for dense screens)


@functools.lru_cache(maxsize=256)
def _made(path: Path, mtime_ns: int) -> bytes:
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        image.thumbnail((SIDE, SIDE), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=85, optimize=True)
        return out.getvalue()


def thumbnail(path: Path) -> bytes:
    """The painting at ``path`` as a JPEG at most ``SIDE`` px; made again only when the file changes."""
    return _made(path, path.stat().st_mtime_ns)
