"""Images in and out of the renderer: bytes or files to ``(H, W, 3)`` uint8 RGB arrays and back.

Everything the renderer takes and returns is such an array; this module is the only place that
knows about file formats (Pillow), so the rest of ``model`` never sees a PIL image.
"""

from __future__ import annotations

import io
import math
import pathlib
import struct
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from model.errors import ImageError

Format = Literal["JPEG", "PNG"]

# What Pillow's decoders raise on damaged or hostile files besides OSError: the plugins are old
# and each fails its own way.
_DECODER_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, TypeError)

# Modes holding more than 8 bits per pixel of grey: Pillow's convert("RGB") clips them at 255
# instead of scaling, which turns a 16-bit photo white. "I;16*" is 16 bits (PNG, TIFF); "I" is
# a 32-bit integer and "F" a 32-bit float (TIFF), whose range the file does not say.
_WIDE_GREY_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")

# Pictures painted at least SNAP_FROM px long have their short side rounded to a multiple of
# SHAPE_STEP px (``resize_for_render``); 16 also makes every VGG pooling exact.
SHAPE_STEP = 16
SNAP_FROM = 256

_SUFFIX_FORMATS: dict[str, Format] = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}


def decode_image(data: bytes, *, name: str = "the data", max_side: int | None = None) -> np.ndarray:
    """Decode an image file's bytes into an ``(H, W, 3)`` uint8 RGB array, upright.

    The EXIF orientation is applied (phones store pictures sideways and say so there); grey,
    palette, CMYK and 16-bit images become RGB; transparent pixels are composited on white.
    ``name`` says what the bytes are in error messages.

    ``max_side``: the picture is needed no larger than that (its longest side), so a larger one
    is decoded reduced, by a whole factor that keeps its longest side at least ``max_side``: a
    JPEG in draft mode (its DCT scaled down while decoding: a 6000 px photo costs what a 750 px
    one does), any other type reduced as soon as it is decoded, before any copy is made.

    Raises ``ImageError`` if the bytes are not an image Pillow can read, if the file is damaged,
    or if it has more pixels than Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``).
    """
    try:
        with Image.open(io.BytesIO(data)) as opened:
            _check_pixel_count(opened, name)
            orientation = opened.getexif().get(_ORIENTATION, 1)
            if max_side is not None and opened.format == "JPEG":
                opened.draft(opened.mode, _at_least(opened.size, max_side))
            opened.load()
            image = _shrink(opened, max_side) if max_side is not None else opened
            return _to_rgb(_upright(image, orientation), name)
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name} is not an image (or not in a format that can be read)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning arrives as an exception where warnings are errors (the tests, for one).
        raise ImageError(f"{name} is too large an image: {exc}") from exc
    except _DECODER_ERRORS as exc:
        raise ImageError(f"{name} is not an image that can be read, it looks damaged: {exc}") from exc


_ORIENTATION = 0x0112  # the EXIF tag
_TRANSPOSES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Modes ``Image.reduce`` takes; others ("1", "P", "I;16") are shrunk by resizing.
_REDUCIBLE = ("L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "I", "F", "PA")


def _at_least(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The smallest (w, h) of ``size``'s shape whose longest side is at least ``max_side``."""
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _shrink(image: Image.Image, max_side: int) -> Image.Image:
    """``image`` reduced by the largest whole factor that keeps its longest side at least ``max_side``.

    Strip by strip, about a megapixel at a time: Pillow reduces a picture with an alpha channel
    through a premultiplied copy of it, which for a whole 40-megapixel photo is 160 MB more. The
    last ``factor - 1`` rows and columns at most are dropped.
    """
    factor = max(image.size) // max(1, max_side)
    if factor < 2:
        return image
    width, height = image.width // factor, image.height // factor
    shrunk = Image.new(image.mode, (width, height))
    if image.mode == "P":
        shrunk.putpalette(image.getpalette() or [])
    shrunk.info = dict(image.info)  # the transparency, where one colour is transparent
    rows = max(1, (1 << 20) // (width * factor * factor))  # output rows per strip
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        strip = image.crop((0, top * factor, width * factor, bottom * factor))
        if image.mode in _REDUCIBLE:
            strip = strip.reduce(factor)
        else:
            strip = strip.resize((width, bottom - top), Image.Resampling.BOX)  # nearest for palettes
        shrunk.paste(strip, (0, top))
    return shrunk


def _upright(image: Image.Image, orientation: object) -> Image.Image:
    """``image`` turned as its EXIF ``orientation`` (1 to 8) says it was held."""
    method = _TRANSPOSES.get(orientation) if isinstance(orientation, int) else None
    return image if method is None else image.transpose(method)


def load_image(path: str | pathlib.Path) -> np.ndarray:
    """Read an image file into an ``(H, W, 3)`` uint8 RGB array; see ``decode_image``."""
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read the image {path}: {exc.strerror or exc}") from exc
    return decode_image(data, name=str(path))


def resize_to_longest(image: np.ndarray, size: int, multiple: int = 1) -> np.ndarray:
    """Resize ``image`` so that its longest side is ``size`` pixels, keeping its aspect ratio.

    Lanczos resampling, up or down; the short side is rounded to the nearest multiple of
    ``multiple`` pixels (1: to the pixel) and is never less than one multiple. Returns a new
    ``(h, w, 3)`` uint8 array.
    """
    check_rgb(image)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive whole number, got: {size!r}")
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise ValueError(f"multiple must be a positive whole number, got: {multiple!r}")
    height, width = image.shape[:2]
    scale = size / max(height, width)

    def side(length: int) -> int:
        if length == max(height, width):
            return size
        return max(1, round(length * scale / multiple)) * multiple

    shape = (side(width), side(height))  # PIL wants (w, h)
    resized = Image.fromarray(image).resize(shape, Image.Resampling.LANCZOS)
    return np.array(resized, dtype=np.uint8)


def resize_for_render(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` at the size the renderer paints it: its longest side ``size``, and from
    ``SNAP_FROM`` px on, its short side rounded to a multiple of ``SHAPE_STEP``.

    The renderer compiles its network once per picture shape (seconds, and memory kept for the
    life of the process). Rounding bounds the shapes a long-running bot ever meets at one size
    (64 at 512 px, each seen again and again), for an aspect ratio off by at most half a step
    (under 2% for a short side of 400 px).
    """
    return resize_to_longest(image, size, SHAPE_STEP if size >= SNAP_FROM else 1)


def encode_image(image: np.ndarray, format: Format = "JPEG", quality: int = 92) -> bytes:
    """Encode an ``(H, W, 3)`` uint8 RGB array as JPEG (at ``quality``, 1-95) or PNG bytes."""
    check_rgb(image)
    picture = Image.fromarray(image)
    buffer = io.BytesIO()
    if format == "JPEG":
        if not 1 <= quality <= 95:
            raise ValueError(f"quality must be between 1 and 95, got: {quality}")
        # No chroma subsampling: paintings live on sharp colour edges that 4:2:0 smears.
        picture.save(buffer, "JPEG", quality=quality, subsampling=0)
    elif format == "PNG":
        picture.save(buffer, "PNG")
    else:
        raise ValueError(f"format must be 'JPEG' or 'PNG', got: {format!r}")
    return buffer.getvalue()


def image_format(path: str | pathlib.Path) -> Format:
    """The format a picture saved at ``path`` is written in, after its suffix; ImageError if none."""
    path = pathlib.Path(path)
    format = _SUFFIX_FORMATS.get(path.suffix.lower())
    if format is None:
        raise ImageError(f"cannot tell the format of {path}: name it .png, .jpg or .jpeg")
    return format


def save_image(image: np.ndarray, path: str | pathlib.Path, quality: int = 92) -> None:
    """Write an ``(H, W, 3)`` uint8 RGB array to ``path``, as PNG or JPEG after its suffix.

    Raises ``ImageError`` for another suffix, or a file that cannot be written.
    """
    path = pathlib.Path(path)
    data = encode_image(image, image_format(path), quality)
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise ImageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def check_rgb(image: object, what: str = "image") -> None:
    """Raise ``ImageError`` unless ``image`` is a non-empty ``(H, W, 3)`` uint8 array."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{what} must be a NumPy array, got: {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape or image.dtype != np.uint8:
        raise ImageError(
            f"{what} must be an (H, W, 3) uint8 RGB array, got: {image.shape} {image.dtype}"
        )


def _check_pixel_count(image: Image.Image, name: str) -> None:
    """Refuse images over Pillow's limit (Pillow itself only warns between 1x and 2x of it)."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and image.width * image.height > limit:
        raise ImageError(
            f"{name} is too large an image: {image.width}x{image.height} pixels, "
            f"the limit is {limit} pixels"
        )


def _to_rgb(image: Image.Image, name: str) -> np.ndarray:
    """Any Pillow mode to an ``(H, W, 3)`` uint8 RGB array; ``name`` is what errors call it."""
    if image.mode in _WIDE_GREY_MODES:
        values = np.asarray(image, dtype=np.float64)
        grey = values * (255.0 / _grey_range(image.mode, values, name))
        transparent = image.info.get("transparency")
        if isinstance(transparent, int):  # one grey value marked transparent: composited on white
            grey[values == transparent] = 255.0
        grey8 = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return np.repeat(grey8[:, :, np.newaxis], 3, axis=2)
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.array(image.convert("RGB"), dtype=np.uint8)


def _grey_range(mode: str, values: np.ndarray, name: str) -> float:
    """The value that stands for white in a wide grey image of ``mode``.

    16-bit modes: 65535. A 32-bit integer image ("I") is taken to hold 8, 16 or 31 bits, the
    fewest its largest value fits in; a float image ("F") to hold 0..1 (or 0..255 where its
    values go above 1). Anything else has no sure meaning as a picture and is refused.
    """
    if mode.startswith("I;16"):
        return 65535.0
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if not (np.isfinite(low) and np.isfinite(high)) or low < 0:
        raise ImageError(f"{name} is a {mode} image with values from {low:g} to {high:g}: no picture that can be read")
    if mode == "F":
        if high <= 255.0:
            return 1.0 if high <= 1.0 else 255.0
        raise ImageError(f"{name} is a floating-point image with values up to {high:g}: no picture that can be read")
    return next(white for white in (255.0, 65535.0, 2.0**31 - 1) if high <= white)
