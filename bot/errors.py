"""The root exception of the bot and what can go wrong talking to the outside world.

A platform's errors are translated into ``PlatformError``s at its boundary (``bot.x.platform``),
so the core (``bot.retry``, the worker, the outbox) decides over these alone.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar


class ForgerError(Exception):
    """Something the bot cannot do; the message is written for the person running it."""


class ConfigError(ForgerError):
    """A setting is missing or wrong; the message names the key and what was expected."""


class PlatformError(ForgerError):
    """A platform answered with an error, or could not be reached.

    ``transient`` is True when the same call may work later; the plain class is an error that
    will not pass (a malformed request, something the platform will not do).
    """

    transient = False


class Transient(PlatformError):
    """The platform could not be reached, timed out or failed on its side (a 5xx): try later."""

    transient = True


class RateLimited(PlatformError):
    """The platform takes no such call until ``until`` (epoch seconds; None when it did not say).

    A spent rate-limit window, a usage cap, an upload still being processed: not the call's
    failure, only "not now". ``why`` says which, in a few words; ``alert`` when the person running
    the bot should hear of it (a usage cap: money, or a setting to change).
    """

    transient = True

    def __init__(self, message: str, *, until: float | None, why: str = "rate-limited", alert: bool = False) -> None:
        super().__init__(message)
        self.until = until
        self.why = why
        self.alert = alert


class Gone(PlatformError):
    """The post asked about or replied to (``ref``) is deleted or not visible: nothing to retry."""

    def __init__(self, message: str, *, ref: str) -> None:
        super().__init__(message)
        self.ref = ref


class Forbidden(PlatformError):
    """The platform refused this one action for a reason of its own (a conversation closed to the
    bot, a restricted account): not the credentials, and not worth repeating."""


class Duplicate(Forbidden):
    """The platform refused a post whose text the bot posted a short while ago."""


class AuthError(PlatformError):
    """The platform refused the credentials or the app's permission: a configuration problem."""


class PhotoProblem(str, enum.Enum):
    """What is wrong with a photo, in the words its sender is told (``bot.refusals.bad_photo``)."""

    NOT_AN_IMAGE = "not_an_image"  # not a JPEG, PNG, WebP or GIF, or not the type it was sent as
    DAMAGED = "damaged"  # cut off or corrupt: it does not decode
    TOO_MANY_PIXELS = "too_many_pixels"  # over ``media.max_pixels`` (decompression bombs among them)
    TOO_MANY_BYTES = "too_many_bytes"  # a file over ``media.max_bytes``
    ELSEWHERE = "elsewhere"  # not on the platform's media hosts, or not over https
    UNREACHABLE = "unreachable"  # the host would not give it, or took too long
    TOO_SMALL = "too_small"  # a side under ``bot.min_photo_side``
    BAD_SHAPE = "bad_shape"  # longer than ``bot.max_aspect_ratio`` times its width (or the other way)


class MediaError(ForgerError):
    """A user's photo could not be fetched or is not a usable image.

    ``transient`` is True when trying again later may work (a timeout, the server failing), and
    False when the photo itself is the problem (wrong type, too large, too small, a foreign host).
    ``problem`` says what was wrong for the reply; the message keeps the detail, for the logs.
    ``width`` and ``height`` are the photo's, where known.
    """

    def __init__(
        self, message: str, *, transient: bool = False, problem: PhotoProblem = PhotoProblem.DAMAGED,
        width: int | None = None, height: int | None = None, limit: int | float | None = None,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.problem = problem
        self.width = width
        self.height = height
        self.limit = limit  # the limit passed, where one was: max pixels, max bytes, max ratio


class PhotoTooSmall(MediaError):
    """A photo smaller than the bot can paint: its short side is below ``min_side`` pixels."""

    def __init__(self, message: str, *, width: int, height: int, min_side: int) -> None:
        super().__init__(message, problem=PhotoProblem.TOO_SMALL, width=width, height=height, limit=min_side)
        self.width = width
        self.height = height
        self.min_side = min_side


class PhotoBadShape(MediaError):
    """A photo too long and thin to paint: its long side over ``max_ratio`` times its short side."""

    def __init__(self, message: str, *, width: int, height: int, max_ratio: float) -> None:
        super().__init__(message, problem=PhotoProblem.BAD_SHAPE, width=width, height=height, limit=max_ratio)
        self.width = width
        self.height = height
        self.max_ratio = max_ratio


class TooManyPixels(MediaError):
    """An image whose header claims more pixels than allowed (a decompression bomb, or just huge):
    refused before it is decoded."""

    def __init__(
        self, message: str, *, width: int | None = None, height: int | None = None, limit: int | None = None,
    ) -> None:
        super().__init__(message, problem=PhotoProblem.TOO_MANY_PIXELS, width=width, height=height, limit=limit)


E = TypeVar("E", bound=Exception)


@contextmanager
def translated(kind: type[E], translate: Callable[[E], PlatformError]) -> Iterator[None]:
    """Raise a platform's own ``kind`` of error as the core's ``PlatformError`` (``translate``),
    at the platform's boundary: ``with translated(XError, translate): ...``."""
    try:
        yield
    except kind as exc:
        raise translate(exc) from exc
