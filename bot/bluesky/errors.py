"""What the PDS and the AppView answer with when a call fails, as the client reads it.

XRPC errors are ``{"error": "Name", "message": "..."}`` with an HTTP status; the client raises
one of these, and ``bot.bluesky.platform`` translates them into the core's errors.
"""

from __future__ import annotations


class BlueskyError(Exception):
    """A call failed; ``transient`` when the same call may work later (a 5xx, a timeout)."""

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None,
                 transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.transient = transient


class BlueskyRateLimited(BlueskyError):
    """A 429, or a window the ledger knows is spent: no such call before ``reset_at`` (epoch s)."""

    def __init__(self, message: str, *, reset_at: float | None) -> None:
        super().__init__(message, status=429, error="RateLimitExceeded", transient=True)
        self.reset_at = reset_at


class BlueskyAuthError(BlueskyError):
    """The handle and app password were refused, or the account is taken down or deactivated."""


class BlueskyGone(BlueskyError):
    """The post (``uri``) is deleted or not visible to the bot."""

    def __init__(self, message: str, *, uri: str) -> None:
        super().__init__(message, error="NotFound")
        self.uri = uri


class BlueskyForbidden(BlueskyError):
    """The bot may not do this: a user who blocks it, a thread whose threadgate leaves it out."""
