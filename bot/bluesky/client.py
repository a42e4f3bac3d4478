"""Every call Forger makes to Bluesky: XRPC over HTTP to the bot's PDS, which passes the
``app.bsky.*`` reads on to the AppView.

Plain ``requests`` rather than an SDK: the bot needs a dozen calls, each answer's rate-limit
headers (the ledger budgets them), and control of the session (refreshed when the access token
expires, logged in again when the refresh token is refused). The app password and the tokens
never reach a log or an error message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from bot.bluesky.errors import BlueskyAuthError, BlueskyError, BlueskyRateLimited
from storage.ledger import Need

if TYPE_CHECKING:
    from bot.bluesky.ledger import Ledger

log = logging.getLogger(__name__)

# The access token lapsed (refresh it), or the refresh token did (log in again).
_EXPIRED = frozenset({"ExpiredToken", "InvalidToken"})
_REFUSED = frozenset({"AuthenticationRequired", "AccountTakedown", "AccountDeactivated", "AuthFactorTokenRequired"})


@dataclass(frozen=True)
class Session:
    did: str
    handle: str
    access_jwt: str
    refresh_jwt: str

    def __repr__(self) -> str:  # never print tokens into logs
        return f"Session(did={self.did!r}, handle={self.handle!r}, ***)"


def reset_at(headers: Mapping[str, str]) -> float | None:
    """The end of the rate-limit window the answer reports (``ratelimit-reset``, epoch seconds)."""
    try:
        return float(headers["ratelimit-reset"])
    except (KeyError, ValueError):
        return None


class BlueskyClient:
    """One account on one PDS: logs in on first use, keeps the session, records every call."""

    def __init__(
        self, service_url: str, *, identifier: str, password: str, timeout_s: float = 10.0,
        ledger: Ledger | None = None, clock: Callable[[], float] = time.time,
    ) -> None:
        self.service_url = service_url.rstrip("/")
        self.identifier = identifier
        self._password = password
        self.timeout_s = timeout_s
        self.ledger = ledger
        self._clock = clock
        self._http = requests.Session()
        self._session: Session | None = None

    def __repr__(self) -> str:
        return f"BlueskyClient({self.service_url!r}, {self.identifier!r}, ***)"

    # -- the session ---------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        """The logged-in session (logging in if there is none yet)."""
        if self._session is None:
            self._session = self._login()
        return self._session

    def _login(self) -> Session:
        body = self._send("POST", "com.atproto.server.createSession", token=None,
                          json={"identifier": self.identifier, "password": self._password})
        log.info("logged in to %s as %s", self.service_url, body.get("handle"))
        return _session(body)

    def _refresh(self) -> Session:
        """A fresh access token from the refresh token; a new login if that is refused too."""
        assert self._session is not None
        try:
            body = self._send("POST", "com.atproto.server.refreshSession", token=self._session.refresh_jwt)
        except BlueskyAuthError:
            log.info("the refresh token was refused: logging in again")
            return self._login()
        return _session(body)

    # -- calls ---------------------------------------------------------------------------------

    def get(self, nsid: str, *, need: Need = Need.NEW_WORK, **params: Any) -> Any:
        return self.call("GET", nsid, params=params, need=need)

    def post(self, nsid: str, body: Any = None, *, need: Need = Need.OWED, **kwargs: Any) -> Any:
        return self.call("POST", nsid, json=body, need=need, **kwargs)

    def call(self, method: str, nsid: str, *, need: Need = Need.OWED, **kwargs: Any) -> Any:
        """One authenticated call, refreshing the session once if its access token expired."""
        route = f"{method} {nsid}"
        if self.ledger is not None:
            self.ledger.permit(route, need)
        session = self.session
        try:
            return self._send(method, nsid, token=session.access_jwt, **kwargs)
        except BlueskyAuthError as exc:
            if exc.error not in _EXPIRED:
                raise
        self._session = self._refresh()
        return self._send(method, nsid, token=self._session.access_jwt, **kwargs)

    def _send(self, method: str, nsid: str, *, token: str | None, data: bytes | None = None,
              content_type: str | None = None, **kwargs: Any) -> Any:
        """One request: sent, recorded in the ledger, its error read; the JSON (or bytes) back."""
        route = f"{method} {nsid}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            response = self._http.request(method, f"{self.service_url}/xrpc/{nsid}", headers=headers, data=data,
                                          timeout=self.timeout_s, **kwargs)
        except requests.Timeout as exc:
            self._record(route, None, {})
            raise BlueskyError(f"{route}: Bluesky did not answer within {self.timeout_s:g} s", transient=True) from exc
        except requests.RequestException as exc:
            self._record(route, None, {})
            raise BlueskyError(f"{route}: Bluesky could not be reached ({type(exc).__name__})", transient=True) from exc
        self._record(route, response.status_code, response.headers)
        if response.status_code >= 400:
            raise _error(route, response)
        if not response.content:
            return {}
        if not response.headers.get("Content-Type", "").startswith("application/json"):
            return response.content
        try:
            return response.json()
        except ValueError as exc:
            raise BlueskyError(f"{route}: the answer is not JSON", status=response.status_code) from exc

    def _record(self, route: str, status: int | None, headers: Mapping[str, str]) -> None:
        if self.ledger is not None:
            self.ledger.record(route, status=status, headers=headers)


def _session(body: Mapping[str, Any]) -> Session:
    try:
        return Session(did=body["did"], handle=body["handle"], access_jwt=body["accessJwt"],
                       refresh_jwt=body["refreshJwt"])
    except KeyError as exc:
        raise BlueskyError(f"the session Bluesky gave lacks {exc.args[0]}") from exc


def _error(route: str, response: requests.Response) -> BlueskyError:
    """The client's error for a 4xx or 5xx: XRPC's ``{"error", "message"}`` read."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    name = body.get("error") if isinstance(body, dict) else None
    said = body.get("message") if isinstance(body, dict) else None
    message = f"{route}: HTTP {status}" + (f" {name}" if name else "") + (f": {said}" if said else "")
    if status == 429:
        return BlueskyRateLimited(message, reset_at=reset_at(response.headers))
    if status == 401 or name in _EXPIRED or name in _REFUSED:
        return BlueskyAuthError(message, status=status, error=name)
    return BlueskyError(message, status=status, error=name, transient=status >= 500)
