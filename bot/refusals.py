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

MAX_CHARS = MAX_TEXT_CHARS  # replies are addressed (``bot.compose.addressed``) on top
HELP_KIND = "help"


class RefusalKind(str, enum.Enum):
    """The reasons a mention is not painted that its author is told about."""

    NO_PHOTO = "no_photo"
    NOT_A_PHOTO = "not_a_photo"  # a GIF or a video
    TOO_MANY_PHOTOS = "too_many_photos"
    TOO_SMALL = "too_small"
    UNKNOWN_PAINTING = "unknown_painting"
    BAD_PHOTO = "bad_photo"  # not an image, the wrong type, too large, not from the platform
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
    subject = which[0].upper() + which[1:] if which.startswith("the ") else f"Your {which}"
    return (
        f"{subject} is only {width}×{height} pixels; I need at least {min_side} on each side. "
        "Please send a bigger one."
    )


def unknown_painting(name: str, suggestions: Sequence[str], known: Sequence[str]) -> str:
    """The reply to a painting's name the gallery lacks: the closest names, or what it has."""
    asked = fit(name, 60)
    if suggestions:
        return f'I don\'t know a painting called "{asked}". Did you mean {_or(suggestions)}?'
    return fit(f'I don\'t know a painting called "{asked}". I know {_and(known)}.', MAX_CHARS)


def bad_photo(which: str, reason: str) -> str:
    return fit(f"I couldn't use your {which}: {reason}. Please send an ordinary photo (JPEG or PNG).", MAX_CHARS)


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

