"""What the admin side needs besides the web app's context: built once, kept on the app."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Config

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class AdminSettings:
    """The admin side's settings (config ``admin``); ``create_app(admin=...)`` turns the side on.

    ``allowed_hosts``: the Host header must name one of these (``.example.com``: any subdomain),
    a guard against DNS rebinding. ``behind_proxy`` (config ``web.trust_proxy``, for the whole
    app): the app sits behind a proxy whose X-Forwarded-Proto and -For it trusts (Secure cookies and HSTS over HTTPS). ``account``: the
    one admin account's name, under which its password hash is stored.
    """

    allowed_hosts: tuple[str, ...] = LOOPBACK
    behind_proxy: bool = False
    session_lifetime_s: int = 8 * 3600
    account: str = "admin"

    def __post_init__(self) -> None:
        if self.session_lifetime_s <= 0:
            raise ValueError(f"session_lifetime_s must be positive, got: {self.session_lifetime_s}")
        if not self.allowed_hosts:
            raise ValueError("allowed_hosts must name at least one host")

    @classmethod
    def from_config(cls, config: Config) -> AdminSettings:
        section = config.admin
        return cls(allowed_hosts=section.allowed_hosts, behind_proxy=config.web.trust_proxy,
                   session_lifetime_s=section.session_lifetime_s)

    def allows_host(self, host_header: str) -> bool:
        """Is ``host_header`` (``name[:port]``, ``[v6]:port``) one of the allowed hosts?"""
        host = host_header.strip().lower()
        if host.startswith("["):
            host = host[1:host.find("]")] if "]" in host else ""
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        host = host.rstrip(".")
        if not host:
            return False
        for allowed in (a.lower() for a in self.allowed_hosts):
            if host == allowed or (allowed.startswith(".") and host.endswith(allowed)):
                return True
        return False
