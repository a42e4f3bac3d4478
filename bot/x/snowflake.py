"""X's ids ("snowflakes"): the time a tweet was made is in its id, so ids can stand for moments.

An id is the milliseconds since X's epoch (2010-11-04T01:42:54.657Z) shifted left 22 bits, plus
a machine and sequence number in the low bits. Polling with an overlap uses this: "since the id
of two minutes before the newest mention seen" is one ``since_id``.
"""

from __future__ import annotations

TWEPOCH_MS = 1_288_834_974_657
_SHIFT = 22


def id_at(epoch_s: float) -> int:
    """The smallest id X could give a tweet made at ``epoch_s`` (seconds since 1970)."""
    return max(0, int(epoch_s * 1000) - TWEPOCH_MS) << _SHIFT


def shifted(tweet_id: str | int, seconds: float) -> int:
    """The id ``seconds`` later (negative: earlier) than ``tweet_id``, never below 0."""
    return max(0, int(tweet_id) + (int(seconds * 1000) << _SHIFT))
