"""Whether and when to try a call to X again: a pure decision over the error and the attempts made.

Only errors known to pass are retried, each at the time it names; nothing here sleeps:

- ``XRateLimited``: at the window's reset, as X said (the gateway puts a minute when X sent no
  reset time, so nothing ever comes back at once); waiting is not a failed attempt;
- ``XUsageCapped``: when the cap's period ends, and the admin is told; not a failed attempt;
- ``XMediaPending``: when X said to check again; not a failed attempt;
- other transient ``XError`` (5xx, timeouts, X unreachable): backoff, doubling from
  ``BASE_S`` up to ``MAX_S``, with jitter (each wait a random 50-100% of that) so that workers
  do not come back in step, until ``max_attempts``;
- ``XTweetGone``: never, and nobody is told (there is no tweet to answer);
- ``XAuthError``: never; a configuration error, stated to the admin;
- ``XDuplicate``: never (the same text again is refused again), and nobody is told;
- ``XForbidden`` (X refused this one action: a conversation closed to the bot): never, nobody
  is told (a notice would be refused too), and the admin hears of it;
- anything else: never.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bot.errors import XAuthError, XDuplicate, XError, XForbidden, XMediaPending, XRateLimited, XTweetGone, XUsageCapped

BASE_S = 30.0
MAX_S = 15 * 60.0


@dataclass(frozen=True)
class RetryDecision:
    """What to do after a failed call: retry at ``at`` (epoch seconds), or give up."""

    retry: bool
    at: float | None
    reason: str
    counts: bool = True  # whether this try counts against max_attempts (waiting for X does not)
    tell_user: bool = True  # on giving up: False when there is nobody to tell
    alert: str | None = None  # for the admin


def backoff_s(attempts: int, rng: random.Random) -> float:
    """Seconds to wait after the ``attempts``-th failure in a row: doubling, capped, jittered."""
    ceiling = min(MAX_S, BASE_S * 2 ** max(0, attempts - 1))
    return ceiling * rng.uniform(0.5, 1.0)


def decide(
    error: Exception, attempts: int, *, max_attempts: int, now: float, rng: random.Random | None = None
) -> RetryDecision:
    """The decision after the ``attempts``-th try (1 for the first) failed with ``error``."""
    if isinstance(error, XRateLimited):
        at = error.reset_at if error.reset_at is not None else now + BASE_S
        return RetryDecision(True, max(at, now), "rate limit window used up", counts=False)
    if isinstance(error, XUsageCapped):
        return RetryDecision(True, error.until, f"usage cap until the {error.period.lower()} period ends",
                             counts=False, alert=str(error))
    if isinstance(error, XMediaPending):
        return RetryDecision(True, error.check_at, "X is processing the upload", counts=False)
    if isinstance(error, XTweetGone):
        return RetryDecision(False, None, "the tweet is gone", tell_user=False)
    if isinstance(error, XAuthError):
        return RetryDecision(False, None, "X refused the credentials", alert=str(error))
    if isinstance(error, XDuplicate):
        return RetryDecision(False, None, "X refused it as a duplicate", tell_user=False)
    if isinstance(error, XForbidden):
        return RetryDecision(False, None, "X refused this action", tell_user=False, alert=str(error))
    if isinstance(error, XError) and error.transient:
        if attempts >= max_attempts:
            return RetryDecision(False, None, f"X kept failing ({attempts} attempts)")
        wait = backoff_s(attempts, rng or random.Random())
        return RetryDecision(True, now + wait, f"X failed; backing off {wait:.0f} s")
    return RetryDecision(False, None, f"not worth retrying: {error}")
