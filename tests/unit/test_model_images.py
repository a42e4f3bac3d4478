"""Decoding what people post, resizing, and encoding what the bot sends back."""

from __future__ import annotations

import io
import pathlib

import numpy as np
import pytest
from PIL import Image

from model.errors import ImageError
from model.images import (
    check_rgb,
    decode_image,
    encode_image,
    load_image,
    resize_for_render,
    resize_to_longest,
    save_image,
)

RED, BLUE = (255, 0, 0), (0, 0, 255)


def encoded(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def red_left_blue_right(width: int = 40, height: int = 20) -> Image.Image:
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    return image


def test_a_jpeg_comes_out_as_rgb_uint8() -> None:
    decoded = decode_image(encoded(red_left_blue_right(), "JPEG", quality=95))

    assert decoded.shape == (20, 40, 3)
    assert decoded.dtype == np.uint8
    assert tuple(decoded[10, 5]) == pytest.approx(RED, abs=8)
    assert tuple(decoded[10, 35]) == pytest.approx(BLUE, abs=8)


def test_the_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned, rotate 90 degrees clockwise to view
    data = encoded(red_left_blue_right(), "JPEG", quality=95, exif=exif.tobytes())

    decoded = decode_image(data)

    assert decoded.shape == (40, 20, 3)  # portrait now
    assert tuple(decoded[5, 10]) == pytest.approx(RED, abs=8)  # the left went to the top
    assert tuple(decoded[35, 10]) == pytest.approx(BLUE, abs=8)


def test_greyscale_becomes_rgb() -> None:
    grey = Image.fromarray(np.full((6, 8), 77, np.uint8), mode="L")

    decoded = decode_image(encoded(grey, "PNG"))

    assert decoded.shape == (6, 8, 3) and decoded.dtype == np.uint8
    assert np.all(decoded == 77)


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    levels = np.array([[0, 32896, 65535]], np.uint16)  # 32896 = 128 * 257
    data = encoded(Image.fromarray(levels), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")

    decoded = decode_image(data)

    assert decoded.shape == (1, 3, 3) and decoded.dtype == np.uint8
    assert decoded[0, :, 0].tolist() == [0, 128, 255]


def test_a_transparent_grey_in_a_sixteen_bit_image_is_composited_on_white() -> None:
    levels = np.array([[0, 32896, 1000]], np.uint16)
    data = encoded(Image.fromarray(levels), "PNG", transparency=1000)

    assert decode_image(data)[0, :, 0].tolist() == [0, 128, 255]


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        (np.array([[0, 128, 255]], np.int32), [0, 128, 255]),  # 32-bit integers holding 8 bits
        (np.array([[0, 32896, 65535]], np.int32), [0, 128, 255]),  # ... holding 16 bits
        (np.array([[0, 0.5, 1.0]], np.float32), [0, 128, 255]),  # floats from 0 to 1
        (np.array([[0, 128.0, 255.0]], np.float32), [0, 128, 255]),  # floats from 0 to 255
    ],
)
def test_wide_integer_and_float_grey_images_are_scaled_to_their_range(levels: np.ndarray, expected: list[int]) -> None:
    data = encoded(Image.fromarray(levels), "TIFF")
    assert Image.open(io.BytesIO(data)).mode in ("I", "F")

    assert decode_image(data)[0, :, 0].tolist() == expected


def test_a_float_image_that_is_no_picture_is_refused() -> None:
    for levels in (np.array([[0, 1e6]], np.float32), np.array([[-1.0, 0.5]], np.float32)):
        with pytest.raises(ImageError, match="the photo is a .* image with values .*: no picture that can be read"):
            decode_image(encoded(Image.fromarray(levels), "TIFF"), name="the photo")


def test_transparent_pixels_are_composited_on_white() -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (0, 0, 255, 0)  # fully transparent blue
    rgba[1, :] = (0, 0, 0, 128)  # half-transparent black

    decoded = decode_image(encoded(Image.fromarray(rgba, "RGBA"), "PNG"))

    assert decoded.shape == (2, 2, 3) and decoded.dtype == np.uint8
    assert tuple(decoded[0, 0]) == RED
    assert tuple(decoded[0, 1]) == (255, 255, 255)
    assert tuple(decoded[1, 0]) == pytest.approx((127, 127, 127), abs=1)


def test_a_palette_image_with_a_transparent_colour_is_composited_on_white() -> None:
    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 255, 0])
    palette.putpixel((0, 0), 0)
    palette.putpixel((1, 0), 1)

    decoded = decode_image(encoded(palette, "PNG", transparency=1))

    assert decoded.tolist() == [[[255, 0, 0], [255, 255, 255]]]


def test_cmyk_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (8, 4), (0, 255, 255, 0))  # no cyan, full magenta and yellow: red

    decoded = decode_image(encoded(cmyk, "JPEG", quality=95))

    assert decoded.shape == (4, 8, 3) and decoded.dtype == np.uint8
    assert tuple(decoded[2, 4]) == pytest.approx(RED, abs=8)


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, this is a text file", np.random.default_rng(1).bytes(4096), b"GIF89a" + bytes(10)],
)
def test_what_is_not_an_image_is_refused(data: bytes) -> None:
    with pytest.raises(ImageError, match="is not an image"):
        decode_image(data)


def test_a_truncated_image_is_refused() -> None:
    data = encoded(red_left_blue_right(400, 300), "PNG")

    with pytest.raises(ImageError, match="photo.png is not an image"):
        decode_image(data[: len(data) // 2], name="photo.png")


def test_an_image_over_the_decompression_bomb_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encoded(Image.new("RGB", (30, 20)), "PNG")  # 600 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow errors at twice the limit

    with pytest.raises(ImageError, match="too large"):
        decode_image(data)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_an_image_between_the_limit_and_twice_it_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow only warns there; a bot holding 178 megapixels in memory is still a bad day.
    data = encoded(Image.new("RGB", (15, 10)), "PNG")  # 150 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)

    with pytest.raises(ImageError, match="15x10 pixels, the limit is 100 pixels"):
        decode_image(data)


def test_load_image_reads_a_file_and_names_a_missing_one(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(encoded(red_left_blue_right(), "PNG"))

    assert load_image(path).shape == (20, 40, 3)
    with pytest.raises(ImageError, match="cannot read the image .*missing.jpg"):
        load_image(tmp_path / "missing.jpg")


def test_load_image_names_the_file_that_is_not_an_image(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture")

    with pytest.raises(ImageError, match="notes.jpg is not an image"):
        load_image(path)


@pytest.mark.parametrize(
    ("shape", "size", "expected"),
    [
        ((30, 60, 3), 20, (10, 20, 3)),  # landscape
        ((60, 30, 3), 20, (20, 10, 3)),  # portrait
        ((20, 20, 3), 64, (64, 64, 3)),  # up
        ((1, 1000, 3), 10, (1, 10, 3)),  # a sliver keeps a pixel
        ((1000, 1, 3), 10, (10, 1, 3)),
    ],
)
def test_resize_to_longest_keeps_the_aspect_ratio(
    shape: tuple[int, int, int], size: int, expected: tuple[int, int, int]
) -> None:
    resized = resize_to_longest(np.zeros(shape, np.uint8), size)

    assert resized.shape == expected
    assert resized.dtype == np.uint8


@pytest.mark.parametrize(
    ("shape", "size", "multiple", "expected"),
    [
        ((341, 512, 3), 512, 16, (336, 512, 3)),  # 341 -> 21.3 steps -> 21
        ((512, 300, 3), 512, 16, (512, 304, 3)),  # 300 -> 18.75 steps -> 19
        ((10, 1000, 3), 512, 16, (16, 512, 3)),  # never less than one step
        ((600, 600, 3), 500, 16, (500, 500, 3)),  # the longest side is always the size asked
    ],
)
def test_resize_to_longest_rounds_the_short_side_to_a_multiple(
    shape: tuple[int, int, int], size: int, multiple: int, expected: tuple[int, int, int]
) -> None:
    assert resize_to_longest(np.zeros(shape, np.uint8), size, multiple).shape == expected


def test_resize_for_render_bounds_the_shapes_from_256_px_on() -> None:
    shapes = {
        resize_for_render(np.zeros((height, 1000, 3), np.uint8), 512).shape
        for height in range(1, 1001, 7)
    }
    assert all(width == 512 and height % 16 == 0 for height, width, _ in shapes)
    assert len(shapes) <= 32
    # Small renders (tests, previews) keep the exact aspect ratio.
    assert resize_for_render(np.zeros((30, 60, 3), np.uint8), 20).shape == (10, 20, 3)


def test_resize_to_longest_keeps_colours() -> None:
    image = np.asarray(red_left_blue_right(400, 200))

    resized = resize_to_longest(image, 40)

    assert tuple(resized[10, 2]) == RED
    assert tuple(resized[10, 37]) == BLUE


def test_resize_to_longest_refuses_a_size_of_zero() -> None:
    with pytest.raises(ValueError, match="size must be a positive whole number, got: 0"):
        resize_to_longest(np.zeros((4, 4, 3), np.uint8), 0)
    with pytest.raises(ValueError, match="multiple must be a positive whole number, got: 0"):
        resize_to_longest(np.zeros((4, 4, 3), np.uint8), 4, 0)


def test_png_round_trips_exactly(tmp_path: pathlib.Path) -> None:
    image = np.random.default_rng(3).integers(0, 256, (9, 13, 3), dtype=np.uint8)

    assert np.array_equal(decode_image(encode_image(image, "PNG")), image)
    save_image(image, tmp_path / "out.png")
    assert np.array_equal(load_image(tmp_path / "out.png"), image)


def test_jpeg_is_close_and_is_a_jpeg(tmp_path: pathlib.Path) -> None:
    image = np.asarray(red_left_blue_right())

    data = encode_image(image, "JPEG", quality=90)

    assert data[:3] == b"\xff\xd8\xff"
    assert np.abs(decode_image(data).astype(int) - image).mean() < 4
    save_image(image, tmp_path / "out.JPEG")
    assert (tmp_path / "out.JPEG").read_bytes()[:3] == b"\xff\xd8\xff"


def test_unknown_formats_are_refused(tmp_path: pathlib.Path) -> None:
    image = np.zeros((2, 2, 3), np.uint8)

    with pytest.raises(ValueError, match="format must be 'JPEG' or 'PNG', got: 'GIF'"):
        encode_image(image, "GIF")  # type: ignore[arg-type]
    with pytest.raises(ImageError, match="cannot tell the format of .*out.bmp"):
        save_image(image, tmp_path / "out.bmp")


@pytest.mark.parametrize(
    "array",
    [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3)), np.zeros((0, 4, 3), np.uint8)],
)
def test_arrays_that_are_not_rgb_images_are_refused(array: np.ndarray) -> None:
    with pytest.raises(ImageError, match=r"must be an \(H, W, 3\) uint8 RGB array"):
        check_rgb(array)
    with pytest.raises(ImageError):
        encode_image(array)
