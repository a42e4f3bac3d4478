"""Hostile photos: huge ones decoded within a bounded memory, degenerate shapes refused, and every
bad photo's reply in plain words (what was wrong, what to send instead), the detail in the logs."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot import refusals
from bot.app import Forger
from bot.config import load_config
from bot.errors import MediaError, PhotoProblem
from bot.gallery import Gallery
from bot.interpret import RenderRequest, interpret
from bot.media import check_photo
from bot.memory import MemoryPlatform
from bot.platform import Media, Post
from bot.refusals import RefusalKind
from bot.rendering import QuickRenderer
from tests.factories import make_config
from model.images import decode_image
from storage import jobs, posts

ROOT = Path(__file__).resolve().parents[2]
# What Pillow says of a bomb, and what a decoder says of a damaged file: never in a reply.
INTERNALS = ("Image size", "exceeds limit", "decompression", "truncated", "cannot identify", "allowed", "is a damaged")


def png_header(width: int, height: int) -> bytes:
    """A PNG that says it is ``width``×``height`` and holds one row: a bomb's header, in 60 bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture
def forger(tmp_path: Path) -> Iterator[Forger]:
    config = make_config(tmp_path, bot={"platforms": ["memory"]})
    bot = Forger.create(config, {}, renderer=QuickRenderer(size=64), upgrade=True)
    yield bot
    bot.close()


@pytest.fixture
def world(forger: Forger) -> MemoryPlatform:
    assert isinstance(forger.platform, MemoryPlatform)
    return forger.platform


def _answer(forger: Forger, world: MemoryPlatform, photos: list[bytes], text: str = "@forgerbot starry night") -> str:
    """The reply to a mention with ``photos``, after a poll (and a render, if one was queued)."""
    ask = world.publish("mallory", text, photos=photos)
    forger.poll()
    forger.work()
    [answer] = world.replies_to(ask)
    return answer.text.removeprefix("@mallory ")


# -- 8: huge photos cost what the render needs ---------------------------------------------------


@pytest.mark.parametrize(
    ("make", "mode"),
    [(lambda: png(Image.new("RGBA", (6300, 6300), (200, 30, 30, 128))), "RGBA"),
     (lambda: png(Image.new("I;16", (6000, 6000), 40000)), "16-bit grey")],
    ids=["rgba", "16-bit"],
)
def test_a_huge_one_colour_png_costs_the_worker_little_memory(tmp_path: Path, make: object, mode: str) -> None:
    # The case: a 51 KB one-colour 6300x6300 PNG took the quick worker from 153 MB to
    # 2,164 MB. Intake's check and a render at 512 px may add at most 300 MB to what an ordinary
    # render needs (measured in a fresh process: Linux's VmHWM, its peak resident memory).
    photo = tmp_path / "huge.png"
    photo.write_bytes(make())  # type: ignore[operator]
    probe = textwrap.dedent("""
        import sys
        from pathlib import Path
        from bot.media import check_photo
        from bot.rendering import QuickRenderer

        def peak_mb():
            status = Path("/proc/self/status").read_text().splitlines()
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024

        renderer = QuickRenderer(size=512)
        painting = Path("bot/paintings/starry_night.jpg").read_bytes()
        renderer.render(Path("bot/samples/coffee.jpg").read_bytes(), painting)  # the render's own needs
        before = peak_mb()
        data = Path(sys.argv[1]).read_bytes()
        check_photo(data, claimed="image/png", max_pixels=40_000_000, min_side=64, max_ratio=6)
        renderer.render(data, painting)
        print(peak_mb() - before)
    """)
    done = subprocess.run([sys.executable, "-c", probe, str(photo)], capture_output=True, text=True, cwd=ROOT,
                          check=True, timeout=120)
    added_mb = float(done.stdout.strip())
    assert added_mb < 300, f"a {mode} 6300x6300 PNG added {added_mb:.0f} MB to the worker's peak"


def test_a_large_jpeg_is_decoded_reduced_to_what_the_render_needs() -> None:
    data = jpeg(noise(2400, 1600))

    reduced = decode_image(data, max_side=300)

    # Draft mode decodes at 1/4 (600 px), then a reduce by 2: the longest side still 300 px at least.
    assert reduced.shape == (200, 300, 3)
    whole = np.asarray(Image.fromarray(decode_image(data)).resize((300, 200), Image.Resampling.BOX), dtype=float)
    assert np.abs(reduced.astype(float) - whole).mean() < 8  # the same picture


@pytest.mark.parametrize(
    "image",
    [Image.new("RGBA", (1200, 800), (255, 0, 0, 0)), Image.new("I;16", (1200, 800), 65535),
     Image.new("P", (1200, 800), 0), Image.new("1", (1200, 800), 1), Image.new("LA", (1200, 800), (0, 255))],
    ids=["transparent", "16-bit", "palette", "bilevel", "grey-alpha"],
)
def test_other_types_are_reduced_as_they_are_decoded_and_keep_their_look(image: Image.Image) -> None:
    if image.mode == "P":
        image.putpalette([10, 200, 30] * 256)
    data = png(image)

    reduced = decode_image(data, max_side=256)

    assert reduced.shape == (200, 300, 3)  # 1200 / 4: the largest whole factor keeping 256 px
    assert np.array_equal(np.unique(reduced.reshape(-1, 3), axis=0), np.unique(decode_image(data).reshape(-1, 3), axis=0))


def test_an_exif_rotated_photo_is_reduced_and_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # held sideways: shown turned 90° clockwise
    data = jpeg(noise(1600, 1200), exif=exif.tobytes())

    assert decode_image(data, max_side=256).shape == (400, 300, 3)
    assert decode_image(data).shape == (1600, 1200, 3)


def test_a_huge_photo_is_painted_at_the_render_size(forger: Forger, world: MemoryPlatform) -> None:
    assert _answer(forger, world, [png(Image.new("RGB", (3000, 2000), (9, 99, 199)))]).startswith("Here is your picture")


# -- 9: degenerate shapes are refused, saying which photo and what to send ----------------------


@pytest.mark.parametrize(
    ("size", "said"),
    [((64, 5000), "Your photo is 64×5000 pixels, too long and thin for me to paint. Please "
                                         "crop it or send one at most 6 times as long as it is wide."),
     ((1, 5000), "Your photo is only 1×5000 pixels; I need at least 64 on each side."),
     ((1, 1), "Your photo is only 1×1 pixels; I need at least 64 on each side."),
     ((2000, 300), "Your photo is 2000×300 pixels, too long and thin")],
    ids=["64x5000", "1x5000", "1x1", "wide"],
)
def test_degenerate_shapes_are_refused_after_download(
    forger: Forger, world: MemoryPlatform, size: tuple[int, int], said: str
) -> None:
    text = _answer(forger, world, [png(Image.new("RGB", size, (50, 60, 70)))])  # no size said: the header is read

    assert text.startswith(said)
    assert world.replies_to(world.mentions(since=None).mentions[0].id)[0].media == ()  # no picture painted
    with forger.sessions() as s:
        [ask] = [m.id for m in world.mentions(since=None).mentions]
        assert jobs.by_post(s, "memory", ask) is None
        assert f"photo {size[0]}x{size[1]}" in (posts.get(s, "memory", ask).reason or "")


def test_a_thin_painting_is_refused_from_the_size_the_platform_reports(forger: Forger) -> None:
    def media(key: str, width: int, height: int) -> Media:
        return Media(media_key=key, type="photo", url=f"https://pbs.twimg.com/{key}.jpg", width=width, height=height)

    mention = Post("9", "@forgerbot", "2", "mallory", None, (media("a", 800, 600), media("b", 100, 900)), False)

    decision = interpret(mention, bot_user_id="1", gallery=Gallery.load(), min_side=64, max_ratio=6)

    assert decision.kind is RefusalKind.BAD_SHAPE  # type: ignore[union-attr]
    assert decision.reply.startswith("Your painting is 100×900 pixels, too long and thin")  # type: ignore[union-attr]
    assert isinstance(interpret(mention, bot_user_id="1", gallery=Gallery.load(), min_side=64, max_ratio=10), RenderRequest)


def test_the_largest_aspect_ratio_is_a_setting() -> None:
    assert load_config(ROOT / "config.yaml").bot.max_aspect_ratio == 6
    assert make_config(bot={"max_aspect_ratio": 3}).bot.max_aspect_ratio == 3
    photo = png(Image.new("RGB", (640, 64), (1, 2, 3)))
    assert check_photo(photo, claimed=None, max_pixels=10**6, min_side=64, max_ratio=10).width == 640
    with pytest.raises(MediaError, match="longer than 6 times its width") as caught:
        check_photo(photo, claimed=None, max_pixels=10**6, min_side=64, max_ratio=6)
    assert caught.value.problem is PhotoProblem.BAD_SHAPE


# -- 10: every bad photo's reply says what was wrong and what to send, in plain words ---------------


@pytest.mark.parametrize(
    ("photo", "said"),
    [(b"<html>sign in</html>", "Your photo isn't an image I can open. Please send an ordinary photo (JPEG or PNG)."),
     (jpeg(noise(300, 300))[:2000], "Your photo looks damaged or cut off, so I couldn't open it. Please send it "
                                     "again, or another photo."),
     (png_header(30000, 30000), "Your photo is too big for me to open. Please send a smaller copy, up to 40 "
                                "megapixels."),
     (png_header(7000, 7000), "Your photo is too big for me to open (7000×7000 pixels). Please send a smaller "
                              "copy, up to 40 megapixels.")],
    ids=["not an image", "cut off", "bomb", "too many pixels"],
)
def test_a_bad_photo_is_refused_in_plain_words(forger: Forger, world: MemoryPlatform, photo: bytes, said: str) -> None:
    text = _answer(forger, world, [photo])

    assert text == said
    assert not any(word in text for word in INTERNALS)
    with forger.sessions() as s:  # the detail is kept for the admins
        [ask] = [m.id for m in world.mentions(since=None).mentions]
        assert (posts.get(s, "memory", ask).reason or "").startswith("photo refused: the photo ")


def test_a_bad_painting_is_named_as_the_painting(forger: Forger, world: MemoryPlatform, samples: Path) -> None:
    text = _answer(forger, world, [(samples / "coffee.jpg").read_bytes(), b"GIF89a but not really"], "@forgerbot")

    assert text.startswith("Your painting looks damaged or cut off")


@pytest.mark.parametrize(
    ("problem", "said"),
    [(PhotoProblem.TOO_MANY_BYTES, "Your photo is too large a file. Please send a smaller copy (at most 16 MB), "
                                   "as a JPEG or PNG photo."),
     (PhotoProblem.ELSEWHERE, "I can't fetch your photo from where it's kept. Please attach it to your post as a "
                              "photo."),
     (PhotoProblem.UNREACHABLE, "I couldn't download your photo. Please send it again in a little while.")],
)
def test_the_downloads_refusals_say_what_to_do(problem: PhotoProblem, said: str) -> None:
    limit = 16 * 2**20 if problem is PhotoProblem.TOO_MANY_BYTES else None
    assert refusals.bad_photo("photo", problem, limit=limit) == said
    assert refusals.bad_photo("the photo you replied to", PhotoProblem.UNREACHABLE).startswith(
        "I couldn't download the photo you replied to.")


def test_a_photo_that_fails_in_the_worker_is_answered_without_the_decoders_words(
    forger: Forger, world: MemoryPlatform, samples: Path
) -> None:
    from sqlalchemy import text

    ask = world.publish("mallory", "@forgerbot starry night", photos=[(samples / "coffee.jpg").read_bytes()])
    forger.poll()
    with forger.sessions.begin() as s:  # damaged after intake (or a decoder that disagrees with it)
        s.execute(text("UPDATE jobs SET content_image = :bomb"), {"bomb": png_header(30000, 30000)})
    forger.work()

    [answer] = world.replies_to(ask)
    assert answer.text.startswith("@mallory Sorry, I couldn't paint that: one of the pictures would not open")
    assert not any(word in answer.text for word in INTERNALS[:5])
    with forger.sessions() as s:
        job = jobs.by_post(s, "memory", ask)
        assert job is not None and "too large an image" in (job.error or "")
