"""The root exception of the bot and what can go wrong talking to the outside world."""

from __future__ import annotations


class ForgerError(Exception):
    """Something the bot cannot do; the message is written for the person running it."""


class ConfigError(ForgerError):
    """A setting is missing or wrong; the message names the key and what was expected."""


class XError(ForgerError):
    """X answered with an error, or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        """Worth trying again later: X was unreachable, overloaded or rate-limited."""
        return self.status is None or self.status == 429 or self.status >= 500


class XRateLimited(XError):
    """A rate-limit window is used up until ``reset_at`` (epoch seconds, when X said)."""

    def __init__(self, message: str, *, reset_at: int | None) -> None:
        super().__init__(message, status=429)
        self.reset_at = reset_at


class XAuthError(XError):
    """X refused the credentials (401) or the action (403): a configuration problem."""


class MediaError(ForgerError):
    """A user's photo could not be fetched or is not a usable image."""
