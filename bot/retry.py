"""Whether and when to try a call to a platform again: a pure decision over the error and the attempts.

Only errors known to pass are retried, each at the time it names; nothing here sleeps:

- ``RateLimited`` (a spent window, a usage cap, an upload still processing): at the time the
  platform named (a minute from now when it named none, so nothing ever comes back at once);
  waiting is not a failed attempt; a usage cap is said to the admin;
- other transient errors (5xx, timeouts, the platform unreachable): backoff, doubling from
  ``BASE_S`` up to ``MAX_S``, with jitter (each wait a random 50-100% of that) so that workers
  do not come back in step, until ``max_attempts``, or, for a call given a deadline (``until``:
  a painted picture waits out an outage), until then however many attempts it takes;
- ``Gone``: never, and nobody is told (there is no post to answer);
- ``AuthError``: never; a configuration error, stated to the admin;
- ``Duplicate``: never (the same text again is refused again), and nobody is told;
- ``Forbidden`` (the platform refused this one action: a conversation closed to the bot): never,
  nobody is told (a notice would be refused too), and the admin hears of it;
- anything else: never.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bot.errors import AuthError, Duplicate, Forbidden, Gone, PlatformError, RateLimited

BASE_S = 30.0
MAX_S = 15 * 60.0


@dataclass(frozen=True)
class RetryDecision:
    """What to do after a failed call: retry at ``at`` (epoch seconds), or give up."""

    retry: bool
    at: float | None
    reason: str
    counts: bool = True  # whether this try counts against max_attempts (waiting for a platform does not)
    tell_user: bool = True  # on giving up: False when there is nobody to tell
    alert: str | None = None  # for the admin


def backoff_s(attempts: int, rng: random.Random) -> float:
    """Seconds to wait after the ``attempts``-th failure in a row: doubling, capped, jittered."""
    ceiling = min(MAX_S, BASE_S * 2 ** max(0, attempts - 1))
    return ceiling * rng.uniform(0.5, 1.0)


def decide(
    error: Exception, attempts: int, *, max_attempts: int, now: float, rng: random.Random | None = None,
    until: float | None = None,
) -> RetryDecision:
    """The decision after the ``attempts``-th try (1 for the first) failed with ``error``.

    ``until`` (epoch seconds): transient errors are retried until then instead of ``max_attempts``
    times; the last try is at ``until`` itself.
    """
    if isinstance(error, RateLimited):
        at = error.until if error.until is not None else now + BASE_S
        return RetryDecision(True, max(at, now), error.why, counts=False, alert=str(error) if error.alert else None)
    if isinstance(error, Gone):
        return RetryDecision(False, None, "the post is gone", tell_user=False)
    if isinstance(error, AuthError):
        return RetryDecision(False, None, "the platform refused the credentials", alert=str(error))
    if isinstance(error, Duplicate):
        return RetryDecision(False, None, "refused as a duplicate", tell_user=False)
    if isinstance(error, Forbidden):
        return RetryDecision(False, None, "the platform refused this action", tell_user=False, alert=str(error))
    if isinstance(error, PlatformError) and error.transient and until is not None:
        if now >= until:
            return RetryDecision(False, None, f"the platform kept failing until the deadline ({attempts} attempts)")
        wait = backoff_s(attempts, rng or random.Random())
        at = min(now + wait, until)
        return RetryDecision(True, at, f"the platform failed; backing off {at - now:.0f} s")
    if isinstance(error, PlatformError) and error.transient:
        if attempts >= max_attempts:
            return RetryDecision(False, None, f"the platform kept failing ({attempts} attempts)")
        wait = backoff_s(attempts, rng or random.Random())
        return RetryDecision(True, now + wait, f"the platform failed; backing off {wait:.0f} s")
    return RetryDecision(False, None, f"not worth retrying: {error}")
