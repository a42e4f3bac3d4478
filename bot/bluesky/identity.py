"""Where a Bluesky account keeps its photos: its DID resolved to its PDS, with a cache.

Photos are fetched from the author's own PDS (``com.atproto.sync.getBlob``), not from the
AppView's CDN, whose addresses may name hosts that are not there and serve WebP copies. A
``did:plc`` is looked up in the PLC directory, a ``did:web`` at its domain's well-known address.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from urllib.parse import quote, urlsplit

import requests

from bot.bluesky.errors import BlueskyError

TTL_S = 3600.0  # accounts move between PDSes rarely; an hour-old answer is fine


class Resolver:
    """DID -> PDS URL, each answer kept for ``ttl_s``."""

    def __init__(self, plc_url: str, *, timeout_s: float = 10.0, ttl_s: float = TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.plc_url = plc_url.rstrip("/")
        self.timeout_s = timeout_s
        self.ttl_s = ttl_s
        self._clock = clock
        self._http = requests.Session()
        self._cache: dict[str, tuple[float, str]] = {}
        # Plain http is a test network's (its PLC directory on loopback); elsewhere a PDS is https.
        self._plain_http = _is_loopback(urlsplit(self.plc_url).hostname or "")

    def pds(self, did: str) -> str:
        """The URL of the PDS that hosts ``did``; BlueskyError if it cannot be told."""
        cached = self._cache.get(did)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        endpoint = _pds_of(self._document(did), did)
        parts = urlsplit(endpoint)
        if parts.scheme != "https" and not (self._plain_http and parts.scheme == "http"):
            raise BlueskyError(f"the PDS of {did} is not at an https address: {endpoint}")
        self._cache[did] = (self._clock() + self.ttl_s, endpoint.rstrip("/"))
        return endpoint.rstrip("/")

    def _document(self, did: str) -> dict:
        if did.startswith("did:plc:"):
            url = f"{self.plc_url}/{quote(did)}"
        elif did.startswith("did:web:"):
            url = f"https://{did.removeprefix('did:web:')}/.well-known/did.json"
        else:
            raise BlueskyError(f"{did!r} is not a DID this bot can resolve")
        try:
            response = self._http.get(url, timeout=self.timeout_s, allow_redirects=False)
        except requests.RequestException as exc:
            raise BlueskyError(f"the DID {did} could not be resolved ({type(exc).__name__})", transient=True) from exc
        if response.status_code != 200:
            raise BlueskyError(f"the DID {did} could not be resolved (HTTP {response.status_code})",
                               status=response.status_code, transient=response.status_code >= 500)
        try:
            document = response.json()
        except ValueError as exc:
            raise BlueskyError(f"the DID document of {did} is not JSON") from exc
        if not isinstance(document, dict):
            raise BlueskyError(f"the DID document of {did} is not an object")
        return document


def _pds_of(document: dict, did: str) -> str:
    for service in document.get("service") or []:
        if isinstance(service, dict) and str(service.get("id", "")).endswith("#atproto_pds"):
            endpoint = service.get("serviceEndpoint")
            if isinstance(endpoint, str) and endpoint.startswith(("https://", "http://")):
                return endpoint
    raise BlueskyError(f"the DID document of {did} names no PDS")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
