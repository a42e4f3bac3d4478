"""Why the bot says no, in a short, specific, friendly reply, and how often it says it.

Every refusal has a kind. A user gets at most one reply of each kind (and one ``help``) per
period, so a spammer cannot make the bot spend its budget on answers: ``may_reply`` is that
rule, a pure function over when this user was last told; ``storage.refusals.last_told`` reads
that moment from the replies owed. A banned user gets no reply at all (no kind here).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.compose import MAX_TEXT_CHARS, fit
from bot.errors import PhotoProblem

MAX_CHARS = MAX_TEXT_CHARS  # replies are addressed (``bot.compose.addressed``) on top
HELP_KIND = "help"


class RefusalKind(str, enum.Enum):
    """The reasons a mention is not painted that its author is told about."""

    NO_PHOTO = "no_photo"
    NOT_A_PHOTO = "not_a_photo"  # a GIF or a video
    TOO_MANY_PHOTOS = "too_many_photos"
    TOO_SMALL = "too_small"
    BAD_SHAPE = "bad_shape"  # a long thin strip (beyond ``bot.max_aspect_ratio``)
    UNKNOWN_PAINTING = "unknown_painting"
    BAD_PHOTO = "bad_photo"  # not an image, damaged, too large, not from the platform, not fetched
    OVER_QUOTA = "over_quota"
    QUEUE_FULL = "queue_full"

    @property
    def reply_kind(self) -> str:
        """How an owed reply of this kind is filed (``Reply.kind``), e.g. "refusal:too_small"."""
        return f"refusal:{self.value}"


HOWTO = (
    "Send me two photos: your picture, then a painting. Or one photo and a painting's name, like "
    '"starry night". Say "help" for more.'
)


def no_photo() -> str:
    return HOWTO


def not_a_photo() -> str:
    return "I can only paint photos, not GIFs or videos. Send your picture and the painting as photos."


def too_many_photos(count: int) -> str:
    return f"That's {count} photos; I take two: your picture first, then the painting."


def too_small(which: str, width: int, height: int, min_side: int) -> str:
    """``which``: "photo", "painting" (the user's), or "the photo you replied to"."""
    return (
        f"{_subject(which)} is only {width}×{height} pixels; I need at least {min_side} on each side. "
        "Please send a bigger one."
    )


def bad_shape(which: str, width: int, height: int, max_ratio: float) -> str:
    """The reply to a photo too long and thin to paint (``which`` as in ``too_small``)."""
    return (
        f"{_subject(which)} is {width}×{height} pixels, too long and thin for me to paint. "
        f"Please crop it or send one at most {max_ratio:g} times as long as it is wide."
    )


def bad_photo(
    which: str, problem: PhotoProblem, *, width: int | None = None, height: int | None = None,
    limit: float | None = None,
) -> str:
    """The reply to a photo that cannot be used, in plain words: what was wrong, what to send
    instead. ``which`` as in ``too_small``; ``width``, ``height`` and ``limit`` where known."""
    subject = _subject(which)
    if problem is PhotoProblem.TOO_SMALL and width and height and limit:
        return too_small(which, width, height, int(limit))
    if problem is PhotoProblem.BAD_SHAPE and width and height and limit:
        return bad_shape(which, width, height, limit)
    if problem is PhotoProblem.TOO_MANY_PIXELS:
        size = f" ({width}×{height} pixels)" if width and height else ""
        most = f", up to {limit / 1e6:g} megapixels" if limit else ""
        return f"{subject} is too big for me to open{size}. Please send a smaller copy{most}."
    if problem is PhotoProblem.TOO_MANY_BYTES:
        most = f" (at most {limit / 2**20:g} MB)" if limit else ""
        return f"{subject} is too large a file. Please send a smaller copy{most}, as a JPEG or PNG photo."
    if problem is PhotoProblem.NOT_AN_IMAGE:
        return f"{subject} isn't an image I can open. Please send an ordinary photo (JPEG or PNG)."
    if problem is PhotoProblem.ELSEWHERE:
        return f"I can't fetch {_object(which)} from where it's kept. Please attach it to your post as a photo."
    if problem is PhotoProblem.UNREACHABLE:
        return f"I couldn't download {_object(which)}. Please send it again in a little while."
    return f"{subject} looks damaged or cut off, so I couldn't open it. Please send it again, or another photo."


def _subject(which: str) -> str:
    """"Your photo", "Your painting", "The photo you replied to": what a reply is about."""
    return which[0].upper() + which[1:] if which.startswith("the ") else f"Your {which}"


def _object(which: str) -> str:
    return which if which.startswith("the ") else f"your {which}"


def unknown_painting(name: str, suggestions: Sequence[str], known: Sequence[str]) -> str:
    """The reply to a painting's name the gallery lacks: the closest names, or what it has."""
    asked = fit(name, 60)
    if suggestions:
        return f'I don\'t know a painting called "{asked}". Did you mean {_or(suggestions)}?'
    return fit(f'I don\'t know a painting called "{asked}". I know {_and(known)}.', MAX_CHARS)


def over_quota(per_day: int) -> str:
    return f"You've had your {per_day} pictures for today. Send me more tomorrow!"


def queue_full() -> str:
    return "My easel is full right now. Please send your photos again in a little while."


def may_reply(last_told: datetime | None, now: datetime, period: timedelta) -> bool:
    """Whether a user last told ``last_told`` (None: never) may be told again ``now``."""
    return last_told is None or now - last_told >= period


def _or(names: Sequence[str]) -> str:
    quoted = [f'"{n}"' for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"

