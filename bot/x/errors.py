"""What X's API answers when it will not do a call: the X client's errors, kept in X's terms.

``bot.x.platform.translate`` turns each into the core's ``PlatformError`` at the boundary.
"""

from __future__ import annotations

from bot.errors import ForgerError


class XError(ForgerError):
    """X answered with an error, or could not be reached.

    ``parameters`` names the request parameters X's invalid-request problem blamed, if any, and
    ``values`` the values of them it blamed.
    """

    def __init__(
        self, message: str, *, status: int | None = None, parameters: tuple[str, ...] = (), values: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.parameters = parameters
        self.values = values

    @property
    def transient(self) -> bool:
        """Worth trying again later: X was unreachable, overloaded or rate-limited."""
        return self.status is None or self.status == 429 or self.status >= 500
class XRateLimited(XError):
    """A rate-limit window is used up until ``reset_at`` (epoch seconds, when X said)."""

    def __init__(self, message: str, *, reset_at: float | None) -> None:
        super().__init__(message, status=429)
        self.reset_at = reset_at


class XUsageCapped(XError):
    """X's usage cap for this kind of call (reads or writes) is spent until ``until`` (epoch s).

    Not a rate-limit window: waiting for the window's reset does not help, the period must end.
    """

    def __init__(self, message: str, *, kind: str, period: str, until: float) -> None:
        super().__init__(message, status=429)
        self.kind = kind
        self.period = period
        self.until = until


class XTweetGone(XError):
    """The tweet asked about or replied to is deleted or not visible to the bot: nothing to retry."""

    def __init__(self, message: str, *, tweet_id: str, status: int | None = 403) -> None:
        super().__init__(message, status=status)
        self.tweet_id = tweet_id

    @property
    def transient(self) -> bool:
        return False


class XMediaPending(XError):
    """An upload is still being processed by X; ask again at ``check_at`` (epoch seconds)."""

    def __init__(self, message: str, *, media_id: str, check_at: float) -> None:
        super().__init__(message, status=None)
        self.media_id = media_id
        self.check_at = check_at


class XAuthError(XError):
    """X refused the credentials (401) or the app's permission for the action (403): a
    configuration problem."""


class XDuplicate(XError):
    """X refused a post whose text the bot posted a short while ago (its 403 "duplicate content")."""


class XForbidden(XError):
    """X refused this one action for a reason of its own (403: a conversation closed to the
    bot, a restricted account): not the credentials, and not worth repeating."""


