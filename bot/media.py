"""People's photos, fetched safely: only from the platform's media hosts (each platform's own), within
a byte cap and a time limit.

What comes back is checked before anyone decodes it for real: its first bytes must be the image
type the server claimed (a "JPEG" that is HTML or a ZIP is refused), its pixel count must be
within the limit (a decompression bomb is refused from its header, before decoding), and its
short side must be long enough to paint. Redirects are not followed: media urls answer
directly, and a redirect could lead anywhere.

A failure is a ``MediaError``; ``transient`` says whether trying later may help (a timeout, a 5xx)
or the photo itself is the problem. ``PhotoTooSmall`` is its own kind, since users are told so.
"""

from __future__ import annotations

import io
import ipaddress
import threading
import time
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from PIL import Image

from bot.errors import MediaError, PhotoBadShape, PhotoProblem, PhotoTooSmall, TooManyPixels

# The types platforms serve photos as, by their first bytes; WebP is RIFF....WEBP.
_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Photo:
    """A fetched photo that passed every check."""

    data: bytes
    content_type: str  # as sniffed from the bytes, e.g. "image/jpeg"
    width: int
    height: int


def sniff(data: bytes) -> str | None:
    """The image type ``data`` starts like ("image/jpeg", ...), or None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_photo(
    data: bytes, *, claimed: str | None, max_pixels: int, min_side: int, max_ratio: float | None = None,
    name: str = "the photo",
) -> Photo:
    """``data`` as a Photo, if it is the image type ``claimed`` (a Content-Type), not too big or
    small, no longer than ``max_ratio`` times its width (or the other way; None: any shape).

    Everything but damage is judged from the header. The decode that finds damage is bounded: a
    JPEG is decoded at an eighth of its size each way (draft mode: the whole stream is still
    read), other types are decoded whole, within ``max_pixels``.
    """
    sniffed = sniff(data)
    if sniffed is None:
        raise MediaError(f"{name} is not a JPEG, PNG, WebP or GIF image", problem=PhotoProblem.NOT_AN_IMAGE)
    said = (claimed or "").split(";")[0].strip().lower()
    said = _ALIASES.get(said, said)
    if said and said != sniffed:
        raise MediaError(f"{name} was sent as {said} but is {sniffed}", problem=PhotoProblem.NOT_AN_IMAGE)
    kind = sniffed.split("/")[1].upper()
    try:
        with warnings.catch_warnings():
            # Pillow warns (and past twice its limit raises) on huge images; ours is checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(_FORMATS)) as image:
                width, height = image.size  # from the header: nothing decoded yet
                _check_size(name, width, height, max_pixels=max_pixels, min_side=min_side, max_ratio=max_ratio)
                if image.format == "JPEG":
                    image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
                image.load()  # a truncated or damaged file fails here, not in the renderer
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:  # over twice Pillow's own limit: refused by Image.open
        # No Pillow words in the message: the web API shows it to callers (the detail is in the cause).
        raise TooManyPixels(f"{name} has more than the {max_pixels:,} pixels allowed", limit=max_pixels) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaError(f"{name} is a damaged {kind} file ({exc})", problem=PhotoProblem.DAMAGED) from exc
    return Photo(data, sniffed, width, height)


def _check_size(name: str, width: int, height: int, *, max_pixels: int, min_side: int, max_ratio: float | None) -> None:
    """Refuse a photo of ``width``×``height`` with too many pixels, a side too short, or too thin a shape."""
    if width * height > max_pixels:
        raise TooManyPixels(
            f"{name} has {width}×{height} pixels, more than the {max_pixels:,} allowed",
            width=width, height=height, limit=max_pixels,
        )
    if min(width, height) < min_side:
        raise PhotoTooSmall(
            f"{name} is {width}×{height} pixels; I need at least {min_side} on each side",
            width=width, height=height, min_side=min_side,
        )
    if max_ratio is not None and too_thin(width, height, max_ratio):
        raise PhotoBadShape(
            f"{name} is {width}×{height} pixels, longer than {max_ratio:g} times its width",
            width=width, height=height, max_ratio=max_ratio,
        )


def too_thin(width: int, height: int, max_ratio: float) -> bool:
    """Whether a ``width``×``height`` picture's long side is more than ``max_ratio`` times its short one."""
    return max(width, height) > max_ratio * max(1, min(width, height))


class Downloader:
    """Fetches photos from a platform's media hosts under the limits it was made with.

    Safe to use from several threads at once (a poll fetches its photos together): each thread
    has its own HTTP session, since a ``requests.Session`` is not documented as thread-safe.
    """

    def __init__(
        self,
        *,
        max_bytes: int = 16 * 1024 * 1024,
        time_limit_s: float = 20.0,
        max_pixels: int = 40_000_000,
        min_side: int = 64,
        max_ratio: float | None = 6.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``time_limit_s`` bounds each fetch."""
        self.max_bytes = max_bytes
        self.time_limit_s = time_limit_s
        self.max_pixels = max_pixels
        self.min_side = min_side
        self.max_ratio = max_ratio
        self._clock = clock
        self._local = threading.local()

    @property
    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def fetch(self, url: str, *, hosts: Collection[str], name: str = "the photo") -> Photo:
        """The checked photo at ``url``, which must be on one of ``hosts`` (the platform's media
        hosts); MediaError (``transient`` or not) when it cannot be had."""
        self._check_url(url, frozenset(h.lower() for h in hosts), name)
        deadline = self._clock() + self.time_limit_s
        try:
            # The read timeout bounds each wait for bytes; the deadline, checked after each read,
            # the whole fetch: a server dripping bytes cannot hold it much past ``time_limit_s``.
            with self._session.get(url, stream=True, timeout=self.time_limit_s, allow_redirects=False) as response:
                status = response.status_code
                if status != 200:
                    transient = status == 429 or status >= 500
                    raise MediaError(
                        f"the server would not give {name} (HTTP {status})", transient=transient,
                        problem=PhotoProblem.UNREACHABLE,
                    )
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise MediaError(
                        f"{name} is {int(declared):,} bytes, more than the {self.max_bytes:,} allowed",
                        problem=PhotoProblem.TOO_MANY_BYTES, limit=self.max_bytes,
                    )
                chunks, size = [], 0
                # read1 returns what has arrived (up to _CHUNK, decompressed); iter_content would
                # wait for a whole chunk, each byte restarting the read timeout.
                while chunk := response.raw.read1(_CHUNK, decode_content=True):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise MediaError(
                            f"{name} is more than the {self.max_bytes:,} bytes allowed",
                            problem=PhotoProblem.TOO_MANY_BYTES, limit=self.max_bytes,
                        )
                    if self._clock() > deadline:
                        raise MediaError(
                            f"{name} took longer than {self.time_limit_s:g} s to fetch", transient=True,
                            problem=PhotoProblem.UNREACHABLE,
                        )
                    chunks.append(chunk)
                claimed = response.headers.get("Content-Type")
        except requests.Timeout as exc:
            raise MediaError(
                f"{name} took longer than {self.time_limit_s:g} s to fetch", transient=True,
                problem=PhotoProblem.UNREACHABLE,
            ) from exc
        except requests.RequestException as exc:
            raise MediaError(
                f"{name} could not be fetched: {exc}", transient=True, problem=PhotoProblem.UNREACHABLE,
            ) from exc
        return self.check(b"".join(chunks), claimed=claimed, name=name)

    def check(self, data: bytes, *, claimed: str | None = None, name: str = "the photo") -> Photo:
        """``data`` checked under this downloader's limits (``check_photo``)."""
        return check_photo(
            data, claimed=claimed, max_pixels=self.max_pixels, min_side=self.min_side, max_ratio=self.max_ratio,
            name=name,
        )

    def _check_url(self, url: str, hosts: frozenset[str], name: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host not in hosts:
            raise MediaError(
                f"{name} is at {host or url!r}, which is not one of the platform's media hosts",
                problem=PhotoProblem.ELSEWHERE,
            )
        # Media are served over https; plain http only for a host on loopback (a sandbox).
        if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(host)):
            raise MediaError(f"{name} is not at an https url: {url}", problem=PhotoProblem.ELSEWHERE)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
